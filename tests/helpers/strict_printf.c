/* Makes a NULL given to printf's %s abort, in the test programs and the sanitizer build of
 * the command: glibc prints "(null)" where C has undefined behaviour, and no sanitizer or
 * compiler warning catches it (GCC's -Wformat-overflow only sees NULLs it can prove), so a
 * message naming "(null)" would otherwise pass every test that does not read it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __GLIBC__
#include <printf.h>

static int string_arginfo(const struct printf_info *info, size_t n, int *types, int *sizes)
{
    (void)info;
    if (n > 0) {
        types[0] = PA_STRING;
        sizes[0] = sizeof(const char *);
    }
    return 1;
}

/* %s with its width, precision and '-' flag, as glibc prints it, but never of NULL. */
static int print_string(FILE *out, const struct printf_info *info, const void *const *args)
{
    const char *s = *(const char *const *)args[0];
    if (info->is_long) { /* %ls: wide strings are not used here; refuse rather than misprint */
        fputs("strict_printf: %ls is not supported\n", stderr);
        abort();
    }
    if (!s) {
        fputs("strict_printf: NULL passed to %s (undefined behaviour; glibc would print "
              "\"(null)\")\n", stderr);
        abort();
    }
    size_t len = info->prec >= 0 ? strnlen(s, (size_t)info->prec) : strlen(s);
    size_t pad = info->width > 0 && (size_t)info->width > len ? (size_t)info->width - len : 0;
    for (size_t i = 0; !info->left && i < pad; i++) putc(' ', out);
    fwrite(s, 1, len, out);
    for (size_t i = 0; info->left && i < pad; i++) putc(' ', out);
    return (int)(len + pad);
}

__attribute__((constructor)) static void tq_strict_printf_install(void)
{
    register_printf_specifier('s', print_string, string_arginfo);
}
#endif
