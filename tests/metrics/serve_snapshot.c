/* SPDX-License-Identifier: MIT */
/*
 * Test-only: serves the fixture snapshot over HTTP for tests/e2e/test_http.py.
 *
 *   serve_snapshot LISTEN
 *
 * Prints the bound port and a newline on stdout once serving, then reads
 * commands on stdin, one per line, answering each with a line "ok" (or
 * "error: ..."), so the test never has to sleep:
 *   healthy | crash-loop          publish the fixture healthy or in a crash loop
 *   textfile PATH N               write the textfile N times, alternating two contents
 * Exits 0 when stdin closes. A listen failure prints
 * "cannot listen on LISTEN: REASON" on stderr and exits 2.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "metrics/corral_metrics.h"
#include "metrics/http.h"
#include "metrics/status_json.h"
#include "metrics/textfile.h"
#include "tests/metrics/fixture.h"

static int publish(struct metrics_http *h, bool crash_loop) {
        struct metrics_snapshot s;
        _cleanup_free_ char *text = NULL, *json = NULL;
        char reason[160];
        size_t len;
        int r;

        fixture_snapshot(&s, crash_loop);
        r = metrics_snapshot_render(&s, &text, &len);
        if (r < 0)
                return r;
        r = metrics_snapshot_status_json(&s, &json, &len);
        if (r < 0)
                return r;
        bool healthy = metrics_snapshot_health(&s, reason, sizeof(reason));
        return metrics_http_publish(h, text, json, healthy, reason);
}

/* Two contents of different sizes, so a torn read cannot look like either. */
static int rewrite(const char *path, unsigned long n) {
        struct metrics_snapshot s;
        _cleanup_free_ char *a = NULL, *b = NULL;
        size_t la, lb;
        int r;

        fixture_snapshot(&s, false);
        r = metrics_snapshot_render(&s, &a, &la);
        if (r < 0)
                return r;
        fixture_snapshot(&s, true);
        s.n_worker_rows = 0;
        s.n_rules = 0;
        s.n_scale_events = 0;
        r = metrics_snapshot_render(&s, &b, &lb);
        if (r < 0)
                return r;
        for (unsigned long i = 0; i < n; i++) {
                r = metrics_textfile_write(path, i % 2 ? b : a, i % 2 ? lb : la);
                if (r < 0)
                        return r;
        }
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_(metrics_http_stopp) struct metrics_http *h = NULL;
        char line[4096];
        uint16_t port;
        int r;

        if (argc != 2) {
                fprintf(stderr, "usage: serve_snapshot LISTEN\n");
                return 2;
        }
        r = metrics_http_start(argv[1], 0, &h, &port);
        if (r < 0) {
                fprintf(stderr, "cannot listen on %s: %s\n", argv[1], strerror(-r));
                return 2;
        }
        r = publish(h, false);
        if (r < 0) {
                fprintf(stderr, "cannot publish: %s\n", strerror(-r));
                return 1;
        }
        printf("%u\n", port);
        fflush(stdout);

        while (fgets(line, sizeof(line), stdin)) {
                char path[4000];
                unsigned long n;

                line[strcspn(line, "\n")] = 0;
                if (strcmp(line, "healthy") == 0)
                        r = publish(h, false);
                else if (strcmp(line, "crash-loop") == 0)
                        r = publish(h, true);
                else if (sscanf(line, "textfile %3999s %lu", path, &n) == 2)
                        r = rewrite(path, n);
                else
                        r = -EINVAL;
                if (r < 0)
                        printf("error: %s\n", strerror(-r));
                else
                        printf("ok\n");
                fflush(stdout);
        }
        return 0;
}
