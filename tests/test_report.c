/* Check suite for the report: the SVG writer (escaping, nice ticks, non-finite values,
 * empty series: every document well-formed, as xmllint judges), histograms and the
 * clipping/rounding error split against hand-computed values, the calibrators' choices from
 * the report's histogram against calibration itself, base64 and PNG, and report.json read
 * back to the same figures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "report_out.h"
#include "tq_test.h"

static bool have_xmllint(void) { return system("xmllint --version >/dev/null 2>&1") == 0; }

/* Whether text parses as XML (xmllint --noout); true without xmllint (the suite then reports
 * itself skipped, after running everything else). */
static bool well_formed(const char *text, size_t len)
{
    if (!have_xmllint()) return true;
    char path[] = "/tmp/tq_report_XXXXXX";
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    ck_assert(write(fd, text, len) == (ssize_t)len);
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "xmllint --noout %s", path);
    int rc = system(cmd);
    unlink(path);
    return rc == 0;
}

static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

START_TEST(text_is_escaped)
{
    tq_svg *s = tq_svg_new(100, 50);
    tq_svg_text(s, 1, 2, "start", 10, 0, "a<b & \"c\" 'd' > e\x01 \xff\xfe ±amax");
    size_t len;
    char *doc = tq_svg_finish(s, &len);
    ck_assert_ptr_nonnull(doc);
    ck_assert_msg(strstr(doc, "a&lt;b &amp; &quot;c&quot; &apos;d&apos; &gt; e? ?? ±amax"),
                  "escaped text not found in %s", doc);
    ck_assert(well_formed(doc, len));
    free(doc);
}
END_TEST

START_TEST(nice_ticks)
{
    double t[64], lo, hi;
    int n = tq_nice_ticks(0, 1, 5, t, 64, &lo, &hi);
    ck_assert_int_eq(n, 6);
    for (int i = 0; i < n; i++) TQ_ASSERT_NEAR(t[i], 0.2 * i, 1e-12);
    /* [1e-6, 1e3] on a linear axis: steps of 200 from 0 */
    n = tq_nice_ticks(1e-6, 1e3, 5, t, 64, &lo, &hi);
    ck_assert_int_eq(n, 6);
    ck_assert(t[0] == 0 && lo == 0);
    TQ_ASSERT_NEAR(t[5], 1000, 1e-9);
    TQ_ASSERT_NEAR(hi, 1000, 1e-9);
    /* ... and on a log one: the ten decades */
    n = tq_log_ticks(1e-6, 1e3, t, 64, &lo, &hi);
    ck_assert_int_eq(n, 10);
    for (int i = 0; i < n; i++) TQ_ASSERT_NEAR(log10(t[i]), i - 6, 1e-12);
    /* a log range that does not end on decades is widened to them */
    n = tq_log_ticks(3e-6, 2e2, t, 64, &lo, &hi);
    TQ_ASSERT_NEAR(lo, 1e-6, 1e-18);
    TQ_ASSERT_NEAR(hi, 1e3, 1e-9);
    /* all-equal data: a tenth either side, round ticks around the value */
    n = tq_nice_ticks(5, 5, 5, t, 64, &lo, &hi);
    ck_assert(n >= 3 && lo <= 4.5 && hi >= 5.5);
    bool has_five = false;
    for (int i = 0; i < n; i++) has_five |= fabs(t[i] - 5) < 1e-9;
    ck_assert(has_five);
    n = tq_nice_ticks(0, 0, 5, t, 64, &lo, &hi);
    ck_assert(n >= 3 && lo == -1 && hi == 1);
    /* a cap smaller than the ticks wanted: fewer, wider steps */
    n = tq_nice_ticks(0, 100, 50, t, 4, &lo, &hi);
    ck_assert(n >= 2 && n <= 4 && lo <= 0 && hi >= 100);
    /* nothing drawable: no ticks, no crash, no endless search for a step */
    ck_assert_int_eq(tq_nice_ticks(-INFINITY, INFINITY, 5, t, 64, &lo, &hi), 0);
    ck_assert_int_eq(tq_nice_ticks(0, 5e-324, 5, t, 64, &lo, &hi), 0);
}
END_TEST

START_TEST(tick_labels)
{
    char b[32];
    const struct { double v; const char *want; } cases[] = {
        {0, "0"}, {0.5, "0.5"}, {1000, "1000"}, {1e4, "1e4"}, {1e5, "1e5"}, {2500, "2500"},
        {1e-6, "1e-6"}, {2.5e-6, "2.5e-6"}, {-3e7, "-3e7"}, {0.001, "0.001"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tq_tick_label(cases[i].v, b, sizeof b);
        ck_assert_msg(!strcmp(b, cases[i].want), "%g -> %s, expected %s", cases[i].v, b,
                      cases[i].want);
    }
}
END_TEST

/* A figure with one panel of each kind of series over awkward data: a log axis over
 * [1e-6, 1e3], all-equal values, NaN and infinities, an empty series, an empty panel. */
static void awkward_figure(tq_report *r)
{
    tq_figure *f = tq_report_figure(r, "awkward", "Awkward <data> & \"names\"", "caption & <more>");
    f->cols = 2;
    double x[] = {1e-6, 1e-3, 1, 1e3}, y[] = {1, NAN, INFINITY, 3};
    tq_panel *p = tq_figure_panel(r, f, "log <x>", "x & y", "y");
    p->xlog = true;
    tq_panel_series(r, p, TQ_SERIES_LINE, "line <1>", 0, x, y, 4);
    tq_panel_series(r, p, TQ_SERIES_POINTS, "points", 1, x, y, 4);
    tq_panel_series(r, p, TQ_SERIES_LINE, "empty", 2, NULL, NULL, 0);
    p = tq_figure_panel(r, f, "all equal", "x", "y");
    double same[] = {2, 2, 2}, edges[] = {0, 1, 2, 3};
    tq_panel_series(r, p, TQ_SERIES_LINE, "flat", 0, same, same, 3);
    tq_panel_series(r, p, TQ_SERIES_HIST, "hist", 1, edges, same, 3);
    tq_panel_series(r, p, TQ_SERIES_VLINE, "v", 3, (double[]){NAN}, (double[]){0}, 1);
    tq_panel_series(r, p, TQ_SERIES_HLINE, "h", 4, NULL, (double[]){-INFINITY}, 1);
    p = tq_figure_panel(r, f, "bars", "", "");
    const char *cats[] = {"a<", "b&"};
    tq_panel_categories(p, cats, 2);
    p->ylog = true;
    tq_panel_series(r, p, TQ_SERIES_BARS, "bars", 0, NULL, (double[]){0, 10}, 2);
    p = tq_figure_panel(r, f, "heat", "", "");
    tq_panel_categories(p, cats, 2);
    tq_panel_series(r, p, TQ_SERIES_HEATMAP, "", 0, NULL, (double[]){1, -2, NAN, 4}, 4);
    tq_figure_panel(r, f, "nothing", "", "");
    tq_report_figure(r, "none", "No panels", "");
}

START_TEST(awkward_data_is_skipped_and_reported)
{
    tq_report r = {0};
    awkward_figure(&r);
    ck_assert(!r.failed);
    int64_t skipped = 0;
    size_t len;
    char *svg = tq_figure_svg(&r.figs[0], &len, &skipped);
    ck_assert_ptr_nonnull(svg);
    /* line and points: NaN and inf; vline NaN; hline -inf (the 0 of the log bars is left
     * out without a count: not a bad value, only one a log axis cannot show) */
    ck_assert_msg(skipped == 2 + 2 + 1 + 1, "skipped %lld", (long long)skipped);
    ck_assert(!strstr(svg, "nan") && !strstr(svg, "inf"));
    ck_assert(well_formed(svg, len));
    /* the line is broken at the NaN: two pieces of one point each */
    ck_assert_int_ge(count_of(svg, "<polyline"), 2);
    /* the all-equal panel (x and y all 2) still gets its ticks: both ranges are widened
     * before either axis's ticks are placed through the other's */
    char *eq = strstr(svg, ">all equal<");
    ck_assert_ptr_nonnull(eq);
    ck_assert_msg(count_of(eq, "text-anchor=\"end\">2</text>") == 1 &&
                  count_of(eq, "text-anchor=\"middle\">2</text>") >= 1,
                  "no tick at 2 on both axes of the all-equal panel: %s", eq);
    free(svg);
    svg = tq_figure_svg(&r.figs[1], &len, NULL);
    ck_assert(svg && well_formed(svg, len) && strstr(svg, "(no data)"));
    free(svg);
    int64_t page_skipped = 0;
    char *html = tq_report_html(&r, &len, &page_skipped);
    ck_assert_ptr_nonnull(html);
    ck_assert(page_skipped == skipped);
    ck_assert(well_formed(html, len));
    ck_assert(strstr(html, "Awkward &lt;data&gt; &amp; &quot;names&quot;"));
    ck_assert(strstr(html, "6 value(s) not finite"));
    free(html);
    tq_report_free(&r);
}
END_TEST

START_TEST(histogram_by_hand)
{
    const float v[] = {0, 0.5f, 1, 1.5f, 2, NAN, INFINITY, -1};
    double c[4];
    int64_t bad;
    ck_assert_int_eq(tq_histogram(v, 8, 0, 2, 4, false, c, &bad), 5);
    ck_assert_int_eq(bad, 2);
    const double want[] = {1, 1, 1, 2}; /* 2 falls in the last, closed, bin */
    for (int i = 0; i < 4; i++) TQ_ASSERT_NEAR(c[i], want[i], 0);
    ck_assert_int_eq(tq_histogram(v, 8, 0, 2, 4, true, c, NULL), 6);
    TQ_ASSERT_NEAR(c[0], 2, 0); /* -1 clamped into the first */
}
END_TEST

START_TEST(error_split_by_hand)
{
    /* Values 1.5 (twice) and 3.5 (once), as bin centres of [0, 4) in 4 bins, on uint2 (0..3). */
    const double counts[] = {0, 2, 0, 1};
    tq_calib_hist h = {.counts = counts, .nbins = 4, .range = 4, .absmax = 4, .count = 3};
    tq_format u2 = {.kind = TQ_FORMAT_UINT, .bits = 2};
    double clip, rnd;
    /* amax 3, step 1: 1.5 rounds half to even to 2 (0.25 each); 3.5 clips to 3 (0.25) */
    tq_calib_hist_error(&h, 3, u2, &clip, &rnd);
    TQ_ASSERT_NEAR(rnd, 0.5, 1e-9);
    TQ_ASSERT_NEAR(clip, 0.25, 1e-9);
    /* amax 2, step 2/3: 1.5 -> 2.25 steps -> 2 -> 4/3, error 1/6 each; 3.5 clips to 2 */
    tq_calib_hist_error(&h, 2, u2, &clip, &rnd);
    TQ_ASSERT_NEAR(rnd, 2.0 / 36, 1e-6);
    TQ_ASSERT_NEAR(clip, 2.25, 1e-6);
    /* amax 0: nothing to quantize with, no error counted */
    tq_calib_hist_error(&h, 0, u2, &clip, &rnd);
    ck_assert(clip == 0 && rnd == 0);
}
END_TEST

/* The report's histogram gives each calibrator the amax calibration itself picks. */
START_TEST(calibrators_from_the_kept_histogram)
{
    tq_rng rng;
    tq_rng_seed(&rng, 7);
    tq_tensor *x = tq_tensor_new(1, (int32_t[]){20000}, false);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = tq_rng_normal(&rng) * (i % 97 ? 1 : 6);
    tq_error e = {0};
    tq_qspec spec;
    ck_assert(tq_qspec_parse("int4:calib=max", &spec, &e) == TQ_STATUS_OK);
    tq_quantizer *kept = tq_quantizer_new(&spec, &e);
    tq_quantizer_keep_histogram(kept);
    tq_quantizer_set_state(kept, TQ_QSTATE_CALIBRATING);
    tq_tape *t = tq_tape_new();
    tq_tape_set_recording(t, false);
    ck_assert(tq_quantize(t, x, kept) == x);
    ck_assert(tq_quantizer_finish_calibration(kept, &e) == TQ_STATUS_OK);
    tq_calib_hist h;
    ck_assert(tq_quantizer_calib_hist(kept, &h));
    ck_assert_int_eq(h.count, 20000);
    TQ_ASSERT_NEAR(tq_calib_hist_amax(&h, TQ_CALIB_MAX, 99.99f, tq_quantizer_format(kept)),
                   tq_quantizer_amax(kept)[0], 0);
    for (int k = TQ_CALIB_PERCENTILE; k <= TQ_CALIB_ENTROPY; k++) {
        tq_qspec s = spec;
        s.calib = (tq_calib_kind)k;
        tq_quantizer *q = tq_quantizer_new(&s, &e);
        tq_quantizer_set_state(q, TQ_QSTATE_CALIBRATING);
        tq_quantize(t, x, q);
        ck_assert(tq_quantizer_finish_calibration(q, &e) == TQ_STATUS_OK);
        TQ_ASSERT_NEAR(tq_calib_hist_amax(&h, (tq_calib_kind)k, s.percentile, tq_quantizer_format(q)),
                       tq_quantizer_amax(q)[0], 0);
        tq_quantizer_free(q);
    }
    /* max calibration without the request keeps no histogram */
    tq_quantizer *plain = tq_quantizer_new(&spec, &e);
    tq_quantizer_set_state(plain, TQ_QSTATE_CALIBRATING);
    tq_quantize(t, x, plain);
    ck_assert(tq_quantizer_finish_calibration(plain, &e) == TQ_STATUS_OK);
    ck_assert(!tq_quantizer_calib_hist(plain, &h));
    tq_quantizer_free(plain);
    tq_quantizer_free(kept);
    tq_tape_free(t);
    tq_tensor_free(x);
}
END_TEST

START_TEST(base64_and_png)
{
    char *b = tq_base64((const uint8_t *)"Man", 3);
    ck_assert_str_eq(b, "TWFu");
    free(b);
    b = tq_base64((const uint8_t *)"Ma", 2);
    ck_assert_str_eq(b, "TWE=");
    free(b);
    b = tq_base64((const uint8_t *)"M", 1);
    ck_assert_str_eq(b, "TQ==");
    free(b);
    size_t len;
    uint8_t *png = tq_png_heatmap((double[]){0, 1, -1, NAN}, 2, 2, 3, &len);
    ck_assert_ptr_nonnull(png);
    ck_assert(len > 8 && !memcmp(png, "\x89PNG\r\n\x1a\n", 8));
    /* the IHDR: 6 x 6 pixels, 8-bit RGB */
    ck_assert(png[16] == 0 && png[19] == 6 && png[23] == 6 && png[24] == 8 && png[25] == 2);
    free(png);
    ck_assert_ptr_null(tq_png_heatmap((double[]){1}, 0, 1, 3, &len));
}
END_TEST

START_TEST(json_round_trip)
{
    tq_report r = {0};
    snprintf(r.title, sizeof r.title, "t \"q\" \\ é");
    snprintf(r.command, sizeof r.command, "ptq");
    awkward_figure(&r);
    size_t len1, len2, h1, h2;
    char *j1 = tq_report_to_json(&r, &len1);
    ck_assert_ptr_nonnull(j1);
    tq_report back;
    tq_error e = {0};
    ck_assert_msg(tq_report_from_json(j1, len1, &back, &e) == TQ_STATUS_OK, "%s", e.msg);
    char *j2 = tq_report_to_json(&back, &len2);
    ck_assert(len1 == len2 && !memcmp(j1, j2, len1));
    char *html1 = tq_report_html(&r, &h1, NULL), *html2 = tq_report_html(&back, &h2, NULL);
    ck_assert(h1 == h2 && !memcmp(html1, html2, h1));
    free(j1);
    free(j2);
    free(html1);
    free(html2);
    tq_report_free(&r);
    tq_report_free(&back);
}
END_TEST

START_TEST(json_errors_name_the_field)
{
    const struct { const char *text, *want; } cases[] = {
        {"", "line 1: expected a value"},
        {"{\"tinyqat_report\": 1, \"figures\": [", "expected a value"},
        {"[1, 2]", "expected a JSON object"},
        {"{\"figures\": []}", "tinyqat_report: expected 1"},
        {"{\"tinyqat_report\": 2, \"figures\": []}", "tinyqat_report: expected an integer"},
        {"{\"tinyqat_report\": 1}", "figures: expected an array"},
        {"{\"tinyqat_report\": 1, \"figures\": [{\"id\": \"a/b\", \"panels\": []}]}",
         "figure 1 id: expected lower-case"},
        {"{\"tinyqat_report\": 1, \"figures\": [{\"id\": \"a\", \"panels\": [{\"series\": "
         "[{\"kind\": \"hist\", \"y\": [1]}]}]}]}", "figure 1 panel 1 series 1 x: expected"},
        {"{\"tinyqat_report\": 1, \"figures\": [{\"id\": \"a\", \"panels\": [{\"series\": "
         "[{\"kind\": \"line\", \"x\": [1], \"y\": [1, 2]}]}]}]}", "x: expected 2 numbers, got 1"},
        {"{\"tinyqat_report\": 1, \"figures\": [{\"id\": \"a\", \"panels\": [{\"series\": "
         "[{\"kind\": \"heatmap\", \"y\": [1, 2, 3]}]}]}]}", "y: expected a heat map"},
        {"{\"tinyqat_report\": 1, \"figures\": [{\"id\": \"a\", \"panels\": [{\"series\": "
         "[{\"kind\": \"pie\", \"y\": []}]}]}]}", "kind: expected line"},
        {"{\"tinyqat_report\": 1, \"figures\": [{\"id\": \"a\", \"cols\": 9, \"panels\": []}]}",
         "cols: expected an integer in [1, 4]"},
        {"{\"a\": 1e999}", "expected a finite number"},
        {"{\"a\": \"\\ud800\\q\"}", "expected a well-formed string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tq_report r;
        tq_error e = {0};
        ck_assert_msg(tq_report_from_json(cases[i].text, strlen(cases[i].text), &r, &e) != TQ_STATUS_OK,
                      "accepted: %s", cases[i].text);
        ck_assert_msg(strstr(e.msg, cases[i].want), "'%s': message '%s', expected '%s'",
                      cases[i].text, e.msg, cases[i].want);
    }
    /* nesting deeper than the limit is refused, not recursed into */
    char deep[200];
    memset(deep, '[', sizeof deep);
    tq_error e = {0};
    ck_assert_ptr_null(tq_json_parse(deep, sizeof deep, &e));
    ck_assert(strstr(e.msg, "levels of nesting"));
}
END_TEST

static Suite *report_suite(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("svg");
    tcase_add_test(tc, text_is_escaped);
    tcase_add_test(tc, nice_ticks);
    tcase_add_test(tc, tick_labels);
    tcase_add_test(tc, awkward_data_is_skipped_and_reported);
    tcase_add_test(tc, base64_and_png);
    suite_add_tcase(s, tc);
    tc = tcase_create("figures");
    tcase_add_test(tc, histogram_by_hand);
    tcase_add_test(tc, error_split_by_hand);
    tcase_add_test(tc, calibrators_from_the_kept_histogram);
    tcase_add_test(tc, json_round_trip);
    tcase_add_test(tc, json_errors_name_the_field);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tq_test_run_requiring(report_suite(), have_xmllint(),
                                 "xmllint not installed (libxml2-utils): documents not parsed");
}
