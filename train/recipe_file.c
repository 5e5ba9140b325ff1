/* Recipe files: a named default recipe plus per-layer overrides, one per line, as the
 * sensitivity command proposes and `ptq --recipe-file` reads. */
#include "ptq.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* A layer's specs from a named recipe or "float". */
static tq_status override_from(const char *what, const char *layer, tq_layer_override *o,
                               tq_error *err)
{
    memset(o, 0, sizeof *o);
    if (strlen(layer) >= sizeof o->layer)
        return tq_fail(err, TQ_STATUS_ARG, "layer name '%s' is too long", layer);
    strcpy(o->layer, layer);
    if (strcmp(what, "float") == 0) return TQ_STATUS_OK;
    tq_recipe r;
    if (tq_recipe_make(what, NULL, NULL, &r, err)) return err->status;
    o->has_weights = r.has_weights;
    o->has_acts = r.has_acts;
    o->weights = r.weights;
    o->acts = r.acts;
    return TQ_STATUS_OK;
}

tq_status tq_recipe_load(const char *path, tq_recipe *out, tq_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f) return tq_fail(err, TQ_STATUS_IO, "recipe file %s: %s", path, strerror(errno));
    char line[512];
    int lineno = 0;
    bool have_default = false;
    tq_status st = TQ_STATUS_OK;
    while (st == TQ_STATUS_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char w[4][128];
        int n = sscanf(line, "%127s %127s %127s %127s", w[0], w[1], w[2], w[3]);
        if (n <= 0) continue;
        tq_error e = {0};
        if (strcmp(w[0], "default") == 0 && n == 2 && !have_default) {
            if (tq_recipe_make(w[1], NULL, NULL, out, &e)) st = e.status;
            else snprintf(out->name, sizeof out->name, "%s", path);
            have_default = true;
        } else if (strcmp(w[0], "layer") == 0 && n == 3 && have_default) {
            if (out->n_overrides == TQ_RECIPE_MAX_OVERRIDES)
                st = tq_fail(&e, TQ_STATUS_ARG, "more than %d layer lines", TQ_RECIPE_MAX_OVERRIDES);
            else if (!override_from(w[2], w[1], &out->overrides[out->n_overrides], &e))
                out->n_overrides++;
            else
                st = e.status;
        } else {
            st = tq_fail(&e, TQ_STATUS_FORMAT,
                         have_default ? "expected 'layer NAME RECIPE|float'"
                                      : "expected 'default RECIPE' first");
        }
        if (st) tq_fail(err, st ? st : TQ_STATUS_FORMAT, "recipe file %s:%d: %s", path, lineno, e.msg);
    }
    if (st == TQ_STATUS_OK && ferror(f))
        st = tq_fail(err, TQ_STATUS_IO, "recipe file %s: read error", path);
    if (st == TQ_STATUS_OK && !have_default)
        st = tq_fail(err, TQ_STATUS_FORMAT, "recipe file %s: no 'default RECIPE' line", path);
    fclose(f);
    return st;
}

tq_status tq_recipe_save(const char *path, const char *default_name,
                         const tq_layer_override *over, const char *const *over_names,
                         int n, tq_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f) return tq_fail(err, TQ_STATUS_IO, "recipe file %s: %s", path, strerror(errno));
    fprintf(f, "# tinyqat recipe: a named default, then per-layer overrides\ndefault %s\n",
            default_name);
    for (int i = 0; i < n; i++) fprintf(f, "layer %s %s\n", over[i].layer, over_names[i]);
    if (fclose(f) != 0) return tq_fail(err, TQ_STATUS_IO, "recipe file %s: write failed", path);
    return TQ_STATUS_OK;
}
