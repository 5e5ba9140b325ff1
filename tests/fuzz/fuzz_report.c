/* Fuzz target for report.json, what `tinyqat report` reads: a rejected file gets a message;
 * an accepted one draws (every figure and the page) and writes back to JSON that reads
 * again to the same JSON. */
#include "fuzz_util.h"
#include "report_out.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tq_report r;
    tq_error err = {0};
    tq_status st = tq_report_from_json((const char *)data, size, &r, &err);
    if (st != TQ_STATUS_OK) {
        fuzz_check_error(st, &err, "");
        FUZZ_CHECK(err.msg[0] != '\0');
        return 0;
    }
    size_t len = 0;
    int64_t skipped = 0;
    char *html = tq_report_html(&r, &len, &skipped);
    FUZZ_CHECK(html != NULL && strlen(html) == len);
    free(html);
    char *json = tq_report_to_json(&r, &len);
    FUZZ_CHECK(json != NULL);
    tq_report back;
    tq_error err2 = {0};
    if (tq_report_from_json(json, len, &back, &err2) != TQ_STATUS_OK) {
        fprintf(stderr, "written report.json does not read back: %s\n", err2.msg);
        FUZZ_CHECK(!"round trip");
    }
    size_t len2 = 0;
    char *again = tq_report_to_json(&back, &len2);
    FUZZ_CHECK(again != NULL && len2 == len && memcmp(again, json, len) == 0);
    free(again);
    free(json);
    tq_report_free(&back);
    tq_report_free(&r);
    return 0;
}
