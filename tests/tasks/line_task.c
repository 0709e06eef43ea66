/* SPDX-License-Identifier: MIT */
/*
 * A stream-mode worker for the e2e tests: one answer per input line, flushed
 * per line, with the misbehaviours the tests need on chosen lines. C, not
 * Python, because the tests that use it replace workers often and a Python
 * worker's ~0.1 s start-up on a busy machine (PLATFORM.md) would be measured
 * instead of corral.
 *
 * Usage: line-task [--prefix P] [--tag-pid] [--delay-us N] [--start-delay-us N] [--exit-on WORD]
 *                  [--hang-on WORD] [--hang-once FILE] [--dup-on WORD]
 *   answers "P<line>" (default P "out-"); with --tag-pid "<pid> <first word>";
 *   --exit-on: exits 3 on that line; --hang-on: never answers that line (with
 *   --hang-once FILE: only if FILE does not exist yet, which it then creates);
 *   --dup-on: answers that line, then writes "extra" (an unsolicited result);
 *   --start-delay-us: waits that long before reading anything (a slow start-up).
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tasks/task_util.h"

struct line_opts {
        const char *prefix, *exit_on, *hang_on, *hang_once, *dup_on;
        unsigned long delay_us, start_delay_us;
        int tag_pid;
};

static void parse(int argc, char **argv, struct line_opts *o) {
        static const struct option options[] = {
                { "prefix",    required_argument, NULL, 'p' },
                { "tag-pid",   no_argument,       NULL, 't' },
                { "delay-us",  required_argument, NULL, 'd' },
                { "exit-on",   required_argument, NULL, 'e' },
                { "hang-on",   required_argument, NULL, 'h' },
                { "hang-once", required_argument, NULL, 'o' },
                { "dup-on",    required_argument, NULL, 'u' },
                { "start-delay-us", required_argument, NULL, 's' },
                {}
        };
        int c;

        *o = (struct line_opts) { .prefix = "out-" };
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'p': o->prefix = optarg; break;
                case 't': o->tag_pid = 1; break;
                case 'd': o->delay_us = strtoul(optarg, NULL, 10); break;
                case 'e': o->exit_on = optarg; break;
                case 'h': o->hang_on = optarg; break;
                case 'o': o->hang_once = optarg; break;
                case 'u': o->dup_on = optarg; break;
                case 's': o->start_delay_us = strtoul(optarg, NULL, 10); break;
                default:
                        fprintf(stderr, "line-task: bad arguments\n");
                        exit(2);
                }
}

/* True when this line is to hang: always, or (--hang-once) the first time
 * any worker meets it, as recorded by creating the file. */
static int hangs(const struct line_opts *o, const char *line) {
        if (!o->hang_on || strcmp(line, o->hang_on) != 0)
                return 0;
        if (!o->hang_once)
                return 1;
        int fd = open(o->hang_once, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return 0;
        close(fd);
        return 1;
}

int main(int argc, char **argv) {
        struct line_opts o;
        char *line = NULL;
        size_t size = 0;
        ssize_t n;

        parse(argc, argv, &o);
        if (o.start_delay_us)
                usleep((useconds_t) o.start_delay_us);
        while ((n = getline(&line, &size, stdin)) > 0) {
                if (line[n - 1] == '\n')
                        line[--n] = '\0';
                if (o.exit_on && strcmp(line, o.exit_on) == 0)
                        exit(3);
                if (hangs(&o, line))
                        for (;;)
                                pause();
                if (o.delay_us)
                        usleep((useconds_t) o.delay_us);
                if (o.tag_pid)
                        printf("%d %.*s\n", (int) getpid(), (int) strcspn(line, " "), line);
                else
                        printf("%s%s\n", o.prefix, line);
                if (o.dup_on && strcmp(line, o.dup_on) == 0)
                        puts("extra");
                fflush(stdout);
        }
        free(line);
        return 0;
}
