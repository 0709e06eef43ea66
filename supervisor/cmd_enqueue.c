/* SPDX-License-Identifier: MIT */
/*
 * `corral enqueue URL [FILE|-]`: the producer side of a work queue. Adds one
 * stream entry (field `task`) per input line, pipelined in batches so that a
 * million lines cost a few hundred round trips, and prints how many it added.
 * Blocking is fine here: there is no loop to keep alive.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/commands.h"
#include "supervisor/queue_redis.h"

/* Entries sent before their replies are read: bounded memory, few round trips. */
#define PIPELINE 1000

static const char enqueue_usage[] =
        "Usage: corral enqueue redis://[:PASSWORD@]HOST:PORT/STREAM [FILE|-]\n"
        "\n"
        "Add one entry (field 'task') per line of FILE (default: stdin) to the\n"
        "Redis stream STREAM, for `corral run --tasks redis://...` consumers to take.\n"
        "Prints the number of entries added.\n"
        "\n"
        "  -h, --help     show this help\n";

static int enqueue_usage_error(const char *message) {
        fprintf(stderr, "corral enqueue: %s\n\n%s", message, enqueue_usage);
        return EXIT_USAGE;
}

/* Reads the replies of n pipelined XADDs; the first error is reported. */
static int read_replies(redisContext *c, size_t n, const char *stream) {
        int status = EXIT_OK;
        for (size_t i = 0; i < n; i++) {
                redisReply *r;
                if (redisGetReply(c, (void **) &r) != REDIS_OK) {
                        fprintf(stderr, "corral enqueue: lost the connection to Redis: %s\n", c->errstr);
                        return EXIT_TASKS_FAILED;
                }
                if (r->type == REDIS_REPLY_ERROR && status == EXIT_OK) {
                        fprintf(stderr, "corral enqueue: XADD to %s failed: %s\n", stream, r->str);
                        status = EXIT_TASKS_FAILED;
                }
                freeReplyObject(r);
        }
        return status;
}

static int enqueue(redisContext *c, const struct queue_url *u, FILE *in, unsigned long long *ret_count) {
        char *line = NULL;
        size_t cap = 0, queued = 0;
        ssize_t len;
        int status = EXIT_OK;

        while (status == EXIT_OK && (len = getline(&line, &cap, in)) >= 0) {
                if (len > 0 && line[len - 1] == '\n')
                        len--;
                const char *argv[] = { "XADD", u->stream, "*", "task", line };
                size_t argvlen[] = { 4, strlen(u->stream), 1, 4, (size_t) len };
                if (redisAppendCommandArgv(c, 5, argv, argvlen) != REDIS_OK) {
                        fprintf(stderr, "corral enqueue: %s\n", c->errstr);
                        status = EXIT_TASKS_FAILED;
                        break;
                }
                if (++queued == PIPELINE) {
                        status = read_replies(c, queued, u->stream);
                        *ret_count += queued;
                        queued = 0;
                }
        }
        free(line);
        if (status == EXIT_OK && ferror(in)) {
                perror("corral enqueue: Failed to read the lines");
                status = EXIT_USAGE;
        }
        if (queued > 0) {
                int r = read_replies(c, queued, u->stream);
                if (r == EXIT_OK)
                        *ret_count += queued;
                if (status == EXIT_OK)
                        status = r;
        }
        return status;
}

int cmd_enqueue(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int c;
        optind = 0;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
                if (c == 'h') {
                        fputs(enqueue_usage, stdout);
                        return EXIT_OK;
                }
                return enqueue_usage_error("unknown option");
        }
        if (optind >= argc)
                return enqueue_usage_error("no queue URL given");
        if (argc - optind > 2)
                return enqueue_usage_error("too many arguments");

        struct queue_url u;
        char error[768];
        int r = queue_url_parse(argv[optind], &u, error, sizeof(error));
        if (r < 0) {
                fprintf(stderr, "corral enqueue: %s\n", r == -EINVAL ? error : strerror(-r));
                return EXIT_USAGE;
        }
        const char *path = argc - optind == 2 ? argv[optind + 1] : "-";
        FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
        if (!in) {
                fprintf(stderr, "corral enqueue: cannot read %s: %s\n", path, strerror(errno));
                queue_url_done(&u);
                return EXIT_USAGE;
        }
        redisContext *ctx;
        r = redis_open_checked(&u, &ctx, error, sizeof(error));
        if (r < 0) {
                fprintf(stderr, "corral enqueue: %s\n", r == -EINVAL ? error : strerror(-r));
                if (in != stdin)
                        fclose(in);
                queue_url_done(&u);
                return EXIT_USAGE;
        }
        unsigned long long count = 0;
        int status = enqueue(ctx, &u, in, &count);
        printf("%llu\n", count);
        redisFree(ctx);
        if (in != stdin)
                fclose(in);
        queue_url_done(&u);
        return status;
}
