/* Fuzz target for the quantizer spec parser: the input as a C string. An accepted spec
 * must format to a canonical string that parses back to the same spec, formats to the same
 * string again and makes a quantizer; a rejected one must leave the output untouched. */
#include "fuzz_util.h"
#include "quant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *str = malloc(size + 1);
    FUZZ_CHECK(str != NULL);
    memcpy(str, data, size);
    str[size] = '\0';

    tq_qspec spec, untouched;
    memset(&spec, 0xA5, sizeof spec);
    memcpy(&untouched, &spec, sizeof spec);
    tq_error err = {0};
    tq_status st = tq_qspec_parse(str, &spec, &err);
    if (st != TQ_STATUS_OK) {
        fuzz_check_error(st, &err, "spec");
        FUZZ_CHECK(memcmp(&spec, &untouched, sizeof spec) == 0);
        free(str);
        return 0;
    }

    char canon[256], again[256], tiny[6];
    int len = tq_qspec_format(&spec, canon, sizeof canon);
    FUZZ_CHECK(len > 0 && (size_t)len < sizeof canon && (size_t)len == strlen(canon));
    FUZZ_CHECK(tq_qspec_format(&spec, NULL, 0) == len);
    FUZZ_CHECK(tq_qspec_format(&spec, tiny, sizeof tiny) == len);
    FUZZ_CHECK(strlen(tiny) == (len < 5 ? (size_t)len : 5) && !strncmp(tiny, canon, strlen(tiny)));

    tq_qspec back;
    tq_error err2 = {0};
    if (tq_qspec_parse(canon, &back, &err2) != TQ_STATUS_OK) {
        fprintf(stderr, "spec \"%s\" formats to \"%s\", which does not parse: %s\n", str, canon,
                err2.msg);
        FUZZ_CHECK(!"canonical string parses");
    }
    if (!tq_qspec_equal(&spec, &back) || !tq_qspec_equal(&back, &spec)) {
        fprintf(stderr, "spec \"%s\" formats to \"%s\", which parses to another spec\n", str,
                canon);
        FUZZ_CHECK(!"round trip keeps the spec");
    }
    FUZZ_CHECK(tq_qspec_format(&back, again, sizeof again) == len && !strcmp(again, canon));

    tq_error err3 = {0};
    tq_quantizer *q = tq_quantizer_new(&spec, &err3);
    if (!q) fprintf(stderr, "spec \"%s\" parses but makes no quantizer: %s\n", str, err3.msg);
    FUZZ_CHECK(q != NULL);
    FUZZ_CHECK(tq_qspec_equal(tq_quantizer_spec(q), &spec));
    tq_quantizer_free(q);
    free(str);
    return 0;
}
