/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the joblog reader of supervisor/joblog.h (joblog_read,
 * and through it joblog_parse_line and the resume set) on arbitrary bytes as
 * a joblog file. Besides the sanitizers' findings, it checks the contracts:
 * a line that parses formats to a line that parses back to the same entry
 * (and formats the same again), and the resume set holds exactly the Seqs of
 * the input's lines, each done for --resume-failed iff one of its attempts
 * succeeded.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/joblog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok) {
        if (!ok)
                abort();
}

/* format(e) parses back to e, and formats to the same text again. */
static void check_round_trip(const struct joblog_entry *e) {
        struct strbuf a = {}, b = {};
        struct joblog_entry back;
        char err[256];

        check(joblog_format(&a, e) == 0);
        check(a.len > 0 && a.data[a.len - 1] == '\n');
        char *line = strndup(a.data, a.len - 1);
        check(line);
        check(joblog_parse_line(line, &back, err, sizeof(err)) == 0);
        check(back.seq == e->seq && back.send == e->send && back.receive == e->receive &&
              back.exitval == e->exitval && back.signal == e->signal && strcmp(back.command, e->command) == 0);
        check(joblog_format(&b, &back) == 0);
        check(b.len == a.len && memcmp(a.data, b.data, a.len) == 0);
        free(line);
        strbuf_done(&a);
        strbuf_done(&b);
}

/* Parses the lines after the header as joblog_read does, round-tripping
 * each, into a resume set of its own. Returns false if a line is refused. */
static bool parse_all(char *text, size_t size, struct joblog_state *ret) {
        char *p = memchr(text, '\n', size);
        if (!p)
                return false;
        for (p++; p < text + size;) {
                char *nl = memchr(p, '\n', (size_t) (text + size - p));
                if (!nl)
                        return false;
                *nl = '\0';
                struct joblog_entry e;
                char err[256];
                if (strlen(p) != (size_t) (nl - p) || joblog_parse_line(p, &e, err, sizeof(err)) < 0)
                        return false;
                check_round_trip(&e);
                check(joblog_state_add(ret, &e) == 0);
                p = nl + 1;
        }
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct joblog_state s = {}, mine = {};
        char path[64], error[512] = "";

        /* A real file: joblog_read refuses a symbolic link, as /proc/self/fd/N is. */
        snprintf(path, sizeof(path), "/tmp/fuzz-joblog.%d", (int) getpid());
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        check(fd >= 0);
        check(write(fd, data, size) == (ssize_t) size);
        close(fd);
        int r = joblog_read(path, &s, error, sizeof(error));
        unlink(path);
        check(r == 0 || r == -EINVAL);
        if (r < 0) {
                check(error[0] != '\0' && s.table == NULL);
                return 0;
        }
        if (size == 0)
                return check(s.n == 0), 0;

        char *text = malloc(size);
        check(text);
        memcpy(text, data, size);
        /* NUL bytes in a line: getline reads past them, strtoull/strchr stop
         * at them; only texts without any are compared line by line. */
        if (!memchr(text, '\0', size)) {
                check(parse_all(text, size, &mine));
                check(mine.n == s.n);
                for (size_t i = 0; i < s.cap; i++) {
                        const struct joblog_seq *q = &s.table[i];
                        if (q->seq == 0)
                                continue;
                        check(joblog_state_done(&mine, q->seq, true, 0) == q->ok);
                        check(joblog_state_done(&s, q->seq, true, 0) == q->ok);
                        check(joblog_state_done(&s, q->seq, false, 0) == (q->ok || q->failed > 0));
                }
                for (size_t i = 0; i < mine.cap; i++)
                        if (mine.table[i].seq)
                                check(joblog_state_done(&s, mine.table[i].seq, false, UINT32_MAX) ==
                                      mine.table[i].ok);
        }
        free(text);
        joblog_state_free(&s);
        joblog_state_free(&mine);
        return 0;
}
