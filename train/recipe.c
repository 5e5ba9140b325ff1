/* Recipes: which quantizer specs go on the weights and input activations of every Linear
 * and Conv2d layer, by name (int8, w4a8, ...) or from two spec strings. */
#include "ptq.h"

#include <stdio.h>
#include <string.h>

typedef struct named_recipe {
    const char *name, *weights, *acts;
    tq_keep_kind keep;
    const char *about;
    tq_calib_algo algo;
} named_recipe;

/* Weight specs are per output channel (axis 0) unless a block format is named. At 4 bits
 * and below the weight amax of each channel minimises the quantization MSE: the abs max
 * leaves most weights of a channel in the zero bin. At 2 bits the first and last layers
 * stay in int8, as is usual at that width: a 2-bit grid over a signed, normalised image
 * keeps almost nothing of it. */
static const named_recipe recipes[] = {
    {"int8", "int8:channel=0", "int8", TQ_KEEP_NONE,
     "W8A8: int8 per-channel weights, int8 per-tensor activations", TQ_ALGO_NONE},
    {"w4a16", "int4:block=32", "", TQ_KEEP_NONE, "weight-only int4, blocks of 32", TQ_ALGO_NONE},
    {"int8-sq", "int8:channel=0", "int8", TQ_KEEP_NONE,
     "W8A8 after SmoothQuant (alpha 0.5): activation outliers moved into the weights",
     TQ_ALGO_SMOOTHQUANT},
    {"w4a16-awq", "int4:block=32", "", TQ_KEEP_NONE,
     "weight-only int4, blocks of 32, AWQ scales and clipping", TQ_ALGO_AWQ},
    {"w4a16-gptq", "int4:block=32", "", TQ_KEEP_NONE, "weight-only int4, blocks of 32, GPTQ codes",
     TQ_ALGO_GPTQ},
    {"w3a16", "int3:channel=0:calib=mse", "", TQ_KEEP_NONE, "weight-only int3, per channel",
     TQ_ALGO_NONE},
    {"w3a16-gptq", "int3:channel=0:calib=mse", "", TQ_KEEP_NONE,
     "weight-only int3, per channel, GPTQ codes", TQ_ALGO_GPTQ},
    {"w2a16", "int2:channel=0:calib=mse", "", TQ_KEEP_NONE, "weight-only int2, per channel",
     TQ_ALGO_NONE},
    {"w2a16-gptq", "int2:channel=0:calib=mse", "", TQ_KEEP_NONE,
     "weight-only int2, per channel, GPTQ codes", TQ_ALGO_GPTQ},
    {"w4a8", "int4:channel=0:calib=mse", "int8", TQ_KEEP_NONE,
     "int4 per-channel weights, int8 activations", TQ_ALGO_NONE},
    {"w4a8-gptq", "int4:channel=0:calib=mse", "int8", TQ_KEEP_NONE,
     "int4 per-channel weights with GPTQ codes, int8 activations", TQ_ALGO_GPTQ},
    {"w4a4", "int4:channel=0:calib=mse", "int4", TQ_KEEP_NONE,
     "int4 per-channel weights, int4 activations", TQ_ALGO_NONE},
    {"w2a2", "int2:channel=0:calib=mse", "int2", TQ_KEEP_INT8,
     "int2 per-channel weights, int2 activations; first and last layers int8", TQ_ALGO_NONE},
    {"fp8", "e4m3", "e4m3", TQ_KEEP_NONE, "FP8 e4m3 weights and activations, per-tensor", TQ_ALGO_NONE},
    {"mxfp8", "mxfp8", "mxfp8", TQ_KEEP_NONE, "MX FP8: e4m3 in blocks of 32, power-of-two scales", TQ_ALGO_NONE},
    {"mxfp4", "mxfp4", "mxfp4", TQ_KEEP_NONE, "MX FP4: e2m1 in blocks of 32, power-of-two scales", TQ_ALGO_NONE},
    {"nvfp4", "nvfp4", "nvfp4", TQ_KEEP_NONE, "NVFP4: e2m1 in blocks of 16, e4m3 scales, global scale", TQ_ALGO_NONE},
};

const char *tq_recipe_names(void)
{
    return "int8, int8-sq, w4a16, w4a16-awq, w4a16-gptq, w3a16, w3a16-gptq, w2a16, w2a16-gptq, "
           "w4a8, w4a8-gptq, w4a4, w2a2, fp8, mxfp8, mxfp4, nvfp4";
}

void tq_recipe_list(FILE *out)
{
    for (size_t i = 0; i < sizeof recipes / sizeof *recipes; i++)
        fprintf(out, "  %-10s weights %-26s acts %-8s %s\n", recipes[i].name, recipes[i].weights,
                recipes[i].acts[0] ? recipes[i].acts : "float", recipes[i].about);
}

static tq_status parse_side(const char *spec, const char *what, bool *on, tq_qspec *out,
                            tq_error *err)
{
    *on = spec && spec[0] && strcmp(spec, "float") != 0 && strcmp(spec, "none") != 0;
    if (!*on) return TQ_STATUS_OK;
    tq_error e = {0};
    if (tq_qspec_parse(spec, out, &e))
        return tq_fail(err, e.status, "%s: %s", what, e.msg);
    return TQ_STATUS_OK;
}

tq_status tq_recipe_make(const char *name, const char *weights, const char *acts,
                         tq_recipe *out, tq_error *err)
{
    memset(out, 0, sizeof *out);
    out->keep = TQ_KEEP_NONE;
    out->alpha = 0.5f;
    out->gptq = tq_gptq_config_default();
    if (name) {
        const named_recipe *r = NULL;
        for (size_t i = 0; i < sizeof recipes / sizeof *recipes; i++)
            if (strcmp(recipes[i].name, name) == 0) r = &recipes[i];
        if (!r)
            return tq_fail(err, TQ_STATUS_ARG, "unknown recipe '%s' (expected %s, or --weights/--acts)",
                           name, tq_recipe_names());
        if (!weights) weights = r->weights;
        if (!acts) acts = r->acts;
        snprintf(out->name, sizeof out->name, "%s", name);
        out->keep = r->keep;
        out->algo = r->algo;
        out->awq_clip = r->algo == TQ_ALGO_AWQ;
    } else {
        snprintf(out->name, sizeof out->name, "w:%s/a:%s", weights ? weights : "float",
                 acts ? acts : "float");
    }
    if (parse_side(weights, "weights", &out->has_weights, &out->weights, err) ||
        parse_side(acts, "acts", &out->has_acts, &out->acts, err))
        return err->status;
    if (!out->has_weights && !out->has_acts)
        return tq_fail(err, TQ_STATUS_ARG, "recipe '%s' quantizes nothing", out->name);
    return TQ_STATUS_OK;
}

bool tq_keep_parse(const char *s, tq_keep_kind *out)
{
    if (strcmp(s, "none") == 0) *out = TQ_KEEP_NONE;
    else if (strcmp(s, "float") == 0) *out = TQ_KEEP_FLOAT;
    else if (strcmp(s, "int8") == 0) *out = TQ_KEEP_INT8;
    else return false;
    return true;
}

tq_status tq_recipe_layer(tq_recipe *r, const char *layer, const char *weights,
                          const char *acts, tq_error *err)
{
    tq_layer_override o = {0};
    if (!layer || !layer[0] || strlen(layer) >= sizeof o.layer)
        return tq_fail(err, TQ_STATUS_ARG, "recipe %s: layer name '%s' (expected 1 to %zu characters)",
                       r->name, layer ? layer : "(null)", sizeof o.layer - 1);
    snprintf(o.layer, sizeof o.layer, "%s", layer);
    char what[192];
    snprintf(what, sizeof what, "recipe %s: layer %s: weights", r->name, layer);
    if (parse_side(weights, what, &o.has_weights, &o.weights, err)) return err->status;
    snprintf(what, sizeof what, "recipe %s: layer %s: acts", r->name, layer);
    if (parse_side(acts, what, &o.has_acts, &o.acts, err)) return err->status;
    int k = 0;
    while (k < r->n_overrides && strcmp(r->overrides[k].layer, layer) != 0) k++;
    if (k == TQ_RECIPE_MAX_OVERRIDES)
        return tq_fail(err, TQ_STATUS_ARG, "recipe %s: more than %d layers of its own", r->name,
                       TQ_RECIPE_MAX_OVERRIDES);
    r->overrides[k] = o;
    if (k == r->n_overrides) r->n_overrides++;
    return TQ_STATUS_OK;
}
