/* The data sets of a run: the test split, and the training split divided into the images a run
 * trains on and the ones it holds out for validation, the same way every time (the split
 * follows the run's validation fraction and split seed, which checkpoints record), checked
 * against the run's model. */
#include "train.h"

#include <string.h>

tq_status tq_run_check_data(const tq_run *run, const char *spec, const tq_dataset *d,
                            tq_error *err)
{
    int32_t c, h, w, classes;
    tq_model_input(run->model, &c, &h, &w, &classes);
    if (d->c == c && d->h == h && d->w == w && d->classes == classes) return TQ_STATUS_OK;
    return tq_fail(err, TQ_STATUS_SHAPE,
                   "data %s has %dx%dx%d images in %d classes, but the model (%s%s%s) takes "
                   "%dx%dx%d inputs in %d classes",
                   spec, d->c, d->h, d->w, d->classes, tq_model_name(run->model),
                   run->data_name[0] ? ", trained on " : "", run->data_name, c, h, w, classes);
}

tq_status tq_run_open_data(const tq_run *run, const char *spec, tq_dataset *train,
                           tq_dataset *val, tq_dataset *test, tq_error *err)
{
    tq_dataset all = {0};
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    memset(test, 0, sizeof *test);
    if (tq_dataset_open(spec, TQ_SPLIT_TRAIN, &all, err) ||
        tq_dataset_open(spec, TQ_SPLIT_TEST, test, err) ||
        /* before anything else: a mismatch fails later, deep in the loader or a layer */
        (run->model && (tq_run_check_data(run, spec, &all, err) ||
                        tq_run_check_data(run, spec, test, err))) ||
        (run->val_fraction > 0 &&
         tq_dataset_split(&all, run->val_fraction, run->split_seed, train, val, err))) {
        tq_dataset_free(&all);
        tq_dataset_free(test);
        return err->status;
    }
    if (run->val_fraction == 0) *train = all; /* the split emptied `all` otherwise */
    return TQ_STATUS_OK;
}
