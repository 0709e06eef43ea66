/* SPDX-License-Identifier: MIT */
/* The pure parts of batch mode: argv substitution, command lines, line splitting,
 * the order buffer, the bar, the joblog format and parser, and the resume sets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "supervisor/joblog.h"
#include "supervisor/run_args.h"
#include "supervisor/task.h"

#define CMD(...) ((char *[]) { __VA_ARGS__, NULL })

static void assert_argv(char **got, char *const *want) {
        size_t i = 0;
        for (; want[i]; i++) {
                assert_non_null(got[i]);
                assert_string_equal(got[i], want[i]);
        }
        assert_null(got[i]);
}

static void test_argv_substitution(void **state) {
        static const struct {
                const char *name;
                char *command[5];
                const char *line;
                char *want[6];
        } cases[] = {
                { "appended when absent", { "echo", "-n" }, "a b", { "echo", "-n", "a b" } },
                { "replaced in place", { "cp", "{}", "/tmp" }, "x", { "cp", "x", "/tmp" } },
                { "inside an argument", { "echo", "--in={}.txt" }, "f", { "echo", "--in=f.txt" } },
                { "twice in one argument", { "echo", "{}-{}" }, "ab", { "echo", "ab-ab" } },
                { "in two arguments", { "mv", "{}", "{}.bak" }, "k", { "mv", "k", "k.bak" } },
                { "quotes stay literal", { "echo", "{}" }, "it's \"q\" $HOME `x`", { "echo", "it's \"q\" $HOME `x`" } },
                { "an empty line", { "echo" }, "", { "echo", "" } },
                { "argv[0] too", { "{}", "-v" }, "prog", { "prog", "-v" } },
        };
        struct task_argv a = {};
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                print_message("case: %s\n", cases[i].name);
                assert_int_equal(task_argv_build(&a, cases[i].command, cases[i].line, strlen(cases[i].line)), 0);
                assert_argv(a.argv, cases[i].want);
        }
        /* Reused: a long line after short ones, then a short one again. */
        char big[5000];
        memset(big, 'z', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(task_argv_build(&a, CMD("a", "{}", "b", "{}"), big, strlen(big)), 0);
        assert_int_equal(strlen(a.argv[1]), sizeof(big) - 1);
        assert_string_equal(a.argv[2], "b");
        assert_int_equal(strlen(a.argv[3]), sizeof(big) - 1);
        assert_int_equal(task_argv_build(&a, CMD("echo"), "s", 1), 0);
        assert_argv(a.argv, CMD("echo", "s"));
        /* The line need not be NUL-terminated. */
        assert_int_equal(task_argv_build(&a, CMD("echo"), "abcdef", 3), 0);
        assert_argv(a.argv, CMD("echo", "abc"));
        task_argv_done(&a);

        assert_true(task_command_has_placeholder(CMD("x", "a{}b")));
        assert_false(task_command_has_placeholder(CMD("x", "{", "}")));
}

/* tasks.batch: several lines joined by '\n' are several arguments, as GNU parallel -N. */
static void test_argv_of_several_lines(void **state) {
        static const struct {
                const char *name;
                char *command[5];
                const char *lines;
                char *want[10];
        } cases[] = {
                { "appended when absent", { "echo", "-n" }, "a b\nc\nd", { "echo", "-n", "a b", "c", "d" } },
                { "{} stands for every line", { "cp", "{}", "/tmp" }, "x\ny", { "cp", "x", "y", "/tmp" } },
                { "context replace", { "echo", "x{}y" }, "a\nb", { "echo", "xay", "xby" } },
                { "twice in one argument", { "e", "{}={}" }, "a\nb", { "e", "a=a", "b=b" } },
                { "in two arguments", { "e", "{}", "-", "{}" }, "1\n2", { "e", "1", "2", "-", "1", "2" } },
                { "empty lines stay", { "e" }, "\n\n", { "e", "", "", "" } },
                { "quotes and spaces", { "e", "{}" }, "it's\n\"q\" $x", { "e", "it's", "\"q\" $x" } },
                { "argv[0] from the first line", { "{}" }, "prog\narg", { "prog", "arg" } },
        };
        struct task_argv a = {};
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                print_message("case: %s\n", cases[i].name);
                assert_int_equal(task_argv_build(&a, cases[i].command, cases[i].lines, strlen(cases[i].lines)), 0);
                assert_argv(a.argv, cases[i].want);
        }
        /* Grows the argv array, then shrinks back to one line. */
        char many[200];
        size_t n = 0;
        for (int i = 0; i < 50; i++)
                n += (size_t) snprintf(many + n, sizeof(many) - n, "%s%d", i ? "\n" : "", i);
        assert_int_equal(task_argv_build(&a, CMD("e", "{}", "end"), many, n), 0);
        assert_string_equal(a.argv[1], "0");
        assert_string_equal(a.argv[50], "49");
        assert_string_equal(a.argv[51], "end");
        assert_null(a.argv[52]);
        assert_int_equal(task_argv_build(&a, CMD("e"), "only\nnot", 4), 0);
        assert_argv(a.argv, CMD("e", "only"));
        task_argv_done(&a);
}

static void test_command_line_quotes_like_a_shell(void **state) {
        struct strbuf b = {};
        (void) state;

        assert_int_equal(task_command_line(&b, CMD("echo", "plain-1.txt", "a b", "it's", "")), 0);
        assert_string_equal(b.data, "echo plain-1.txt 'a b' 'it'\\''s' ''");
        /* A newline would cut the joblog line in two: bash's $'...' instead. */
        b.len = 0;
        assert_int_equal(task_command_line(&b, CMD("sh", "-c", "a\nb 'c' \\")), 0);
        assert_string_equal(b.data, "sh -c $'a\\nb \\'c\\' \\\\'");
        strbuf_done(&b);
}

static void test_line_reader_splits_across_reads(void **state) {
        static const char *const chunks[] = { "one\ntw", "o\n", "", "\nthr", "ee" };
        static const char *const want[] = { "one", "two", "", "three" };
        struct line_reader r = {};
        size_t k = 0;
        (void) state;

        for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
                char *p, *line;
                size_t n, len;
                assert_int_equal(line_reader_space(&r, 16, &p, &n), 0);
                assert_true(n >= 16);
                memcpy(p, chunks[i], strlen(chunks[i]));
                /* An empty chunk in the middle is not the end: commit only data. */
                if (strlen(chunks[i]) > 0)
                        line_reader_commit(&r, strlen(chunks[i]));
                while (line_reader_next(&r, &line, &len) == 1) {
                        assert_true(k < 4);
                        assert_string_equal(line, want[k]);
                        assert_int_equal(len, strlen(want[k]));
                        k++;
                }
        }
        assert_int_equal(k, 3);    /* "three" has no newline yet */
        line_reader_commit(&r, 0); /* end of input */
        char *line;
        size_t len;
        assert_int_equal(line_reader_next(&r, &line, &len), 1);
        assert_string_equal(line, "three");
        assert_int_equal(line_reader_next(&r, &line, &len), 0);
        line_reader_done(&r);
}

static void test_line_reader_refuses_a_line_too_long(void **state) {
        struct line_reader r = { .max = 10 };
        char *p, *line;
        size_t n, len;
        (void) state;

        /* 25 bytes of a line with no end yet: dropped, nothing to say yet */
        assert_int_equal(line_reader_space(&r, 64, &p, &n), 0);
        memset(p, 'x', 25);
        line_reader_commit(&r, 25);
        assert_int_equal(line_reader_next(&r, &line, &len), 0);
        assert_int_equal(r.end - r.start, 0);   /* memory stays bounded */
        /* its end, then a line of exactly max bytes and a short one */
        assert_int_equal(line_reader_space(&r, 64, &p, &n), 0);
        memcpy(p, "xxxxx\n0123456789\nok\n", 20);
        line_reader_commit(&r, 20);
        assert_int_equal(line_reader_next(&r, &line, &len), -E2BIG);
        assert_int_equal(len, 30);
        assert_int_equal(line_reader_next(&r, &line, &len), 1);
        assert_string_equal(line, "0123456789");
        assert_int_equal(line_reader_next(&r, &line, &len), 1);
        assert_string_equal(line, "ok");
        /* an over-long last line without '\n' ends at the end of input */
        assert_int_equal(line_reader_space(&r, 64, &p, &n), 0);
        memset(p, 'y', 11);
        line_reader_commit(&r, 11);
        line_reader_commit(&r, 0);
        assert_int_equal(line_reader_next(&r, &line, &len), -E2BIG);
        assert_int_equal(len, 11);
        assert_int_equal(line_reader_next(&r, &line, &len), 0);
        line_reader_done(&r);
}

static char *dup_text(const char *s) {
        return s ? strdup(s) : NULL;
}

static void test_order_buffer_puts_outputs_back_in_order(void **state) {
        struct order_buffer o = {};
        void *data;
        size_t len;
        (void) state;

        assert_false(order_buffer_pop(&o, &data, &len));
        assert_int_equal(order_buffer_put(&o, 2, dup_text("c"), 1), 0);
        assert_int_equal(order_buffer_put(&o, 1, NULL, 0), 0);   /* an empty output */
        assert_false(order_buffer_pop(&o, &data, &len));       /* 0 is still running */
        assert_int_equal(order_buffer_put(&o, 0, dup_text("a"), 1), 0);
        assert_true(order_buffer_pop(&o, &data, &len));
        assert_string_equal(data, "a");
        free(data);
        assert_true(order_buffer_pop(&o, &data, &len));
        assert_null(data);
        assert_int_equal(len, 0);
        assert_true(order_buffer_pop(&o, &data, &len));
        assert_string_equal(data, "c");
        free(data);
        assert_false(order_buffer_pop(&o, &data, &len));

        /* Far ahead of the next: the ring grows and keeps what it holds. */
        assert_int_equal(order_buffer_put(&o, 4, dup_text("e"), 1), 0);
        assert_int_equal(order_buffer_put(&o, 1000, dup_text("z"), 1), 0);
        assert_int_equal(order_buffer_put(&o, 3, dup_text("d"), 1), 0);
        assert_true(order_buffer_pop(&o, &data, &len));
        assert_string_equal(data, "d");
        free(data);
        assert_true(order_buffer_pop(&o, &data, &len));
        assert_string_equal(data, "e");
        free(data);
        assert_false(order_buffer_pop(&o, &data, &len));
        /* An ordinal already out is refused. */
        assert_int_equal(order_buffer_put(&o, 0, dup_text("x"), 1), -EINVAL);
        order_buffer_done(&o);   /* frees "z" */
}

/* line-buffer: whole lines go, a partial one waits until the task ends or it reaches the cap. */
static void test_output_cut_keeps_lines_whole(void **state) {
        static const struct {
                const char *name, *data;
                size_t cap;
                bool final;
                size_t expected;
        } cases[] = {
                { "nothing",                     "",             8, false, 0 },
                { "a partial line waits",        "abc",          8, false, 0 },
                { "one whole line",              "abc\n",        8, false, 4 },
                { "up to the last newline",      "a\nb\nc",      8, false, 4 },
                { "the rest at the end",         "a\nb\nc",      8, true,  5 },
                { "a partial line just under",   "a\n1234567",    8, false, 2 },
                { "a partial line at the cap",   "a\n12345678",   8, false, 10 },
                { "a long line with no newline", "123456789",    8, false, 9 },
                { "an empty line",               "\n",           8, false, 1 },
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                size_t got = task_output_cut(cases[i].data, strlen(cases[i].data), cases[i].cap, cases[i].final);
                if (got != cases[i].expected)
                        fail_msg("%s: cut at %zu, expected %zu", cases[i].name, got, cases[i].expected);
        }
}

static void test_bar_text(void **state) {
        char buf[256];
        (void) state;

        task_bar_format(buf, sizeof(buf), 100, 500, 1000, 3, 8, 250);
        assert_non_null(strstr(buf, "500/1000"));
        assert_non_null(strstr(buf, " 50%"));
        assert_non_null(strstr(buf, "3 failed"));
        assert_non_null(strstr(buf, "8 running"));
        assert_non_null(strstr(buf, "250/s"));
        assert_non_null(strstr(buf, "ETA 0:02"));
        assert_true(buf[0] == '[');
        assert_true(strlen(buf) <= 100);

        task_bar_format(buf, sizeof(buf), 100, 42, 0, 0, 2, -1);
        assert_string_equal(buf, "42 done, 0 failed, 2 running, ?");
}

static void test_joblog_line_round_trip(void **state) {
        struct strbuf b = {};
        struct joblog_entry e = {
                .seq = 17, .start = 1700000000.25, .runtime = 1.5, .receive = 12,
                .exitval = 3, .signal = 0, .command = "echo 'a\tb'",
        }, back;
        char err[256];
        (void) state;

        assert_int_equal(joblog_format_header(&b), 0);
        assert_string_equal(b.data, "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n");
        b.len = 0;
        assert_int_equal(joblog_format(&b, &e), 0);
        assert_string_equal(b.data, "17\t:\t1700000000.250\t     1.500\t0\t12\t3\t0\techo 'a\tb'\n");

        b.data[b.len - 1] = '\0';
        assert_int_equal(joblog_parse_line(b.data, &back, err, sizeof(err)), 0);
        assert_int_equal(back.seq, 17);
        assert_int_equal(back.exitval, 3);
        assert_int_equal(back.receive, 12);
        assert_string_equal(back.command, "echo 'a\tb'");   /* tabs in the command survive */
        assert_false(joblog_entry_ok(&back));
        strbuf_done(&b);
}

/* A time read back from a joblog may have 309 digits before the point: it
 * still formats (it once overran the fixed room for the numbers). */
static void test_joblog_huge_times_format(void **state) {
        struct strbuf b = {};
        char line[] = "3\t:\t1e308\t1e300\t0\t0\t0\t0\tcmd";
        struct joblog_entry e;
        char err[256];
        (void) state;

        assert_int_equal(joblog_parse_line(line, &e, err, sizeof(err)), 0);
        assert_int_equal(joblog_format(&b, &e), 0);
        assert_true(b.len > 600);
        assert_int_equal(strncmp(b.data, "3\t:\t1000000000000000", 20), 0);
        assert_string_equal(b.data + b.len - 5, "\tcmd\n");
        strbuf_done(&b);
}

static void test_joblog_refusals(void **state) {
        static const struct {
                const char *line, *reason;
        } cases[] = {
                { "1\t:\t1.0\t0.1\t0\t0\t0", "7 fields where 9 are expected" },
                { "x\t:\t1.0\t0.1\t0\t0\t0\t0\tcmd", "Seq 'x' is not a task number" },
                { "0\t:\t1.0\t0.1\t0\t0\t0\t0\tcmd", "Seq '0' is not a task number" },
                { "1\t:\tnow\t0.1\t0\t0\t0\t0\tcmd", "Starttime 'now' is not a time" },
                { "1\t:\t1.0\t0.1\t0\t0\tok\t0\tcmd", "Exitval 'ok' is not an exit status" },
                { "1\t:\t1.0\t0.1\t0\t0\t0\t-9\tcmd", "Signal '-9' is not a signal number" },
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char line[128], err[256] = "";
                struct joblog_entry e;
                snprintf(line, sizeof(line), "%s", cases[i].line);
                assert_int_equal(joblog_parse_line(line, &e, err, sizeof(err)), -EINVAL);
                print_message("%s -> %s\n", cases[i].line, err);
                assert_non_null(strstr(err, cases[i].reason));
        }
}

static void add(struct joblog_state *s, uint64_t seq, int exitval, int sig) {
        struct joblog_entry e = { .seq = seq, .exitval = exitval, .signal = sig, .command = "" };
        assert_int_equal(joblog_state_add(s, &e), 0);
}

static void test_resume_sets(void **state) {
        struct joblog_state s = {};
        (void) state;

        add(&s, 1, 0, 0);           /* ok */
        add(&s, 2, 1, 0);           /* failed once */
        add(&s, 3, 1, 0);           /* failed, then ok */
        add(&s, 3, 0, 0);
        add(&s, 4, 0, 9);           /* killed: a failure */
        add(&s, 4, 2, 0);           /* failed twice */
        for (uint64_t i = 100; i < 5000; i++)   /* many: the table grows */
                add(&s, i, 0, 0);

        /* --resume, no retries: every Seq that ended is done. */
        assert_true(joblog_state_done(&s, 1, false, 0));
        assert_true(joblog_state_done(&s, 2, false, 0));
        assert_true(joblog_state_done(&s, 3, false, 0));
        assert_true(joblog_state_done(&s, 4, false, 0));
        assert_false(joblog_state_done(&s, 5, false, 0));   /* never ran */
        assert_true(joblog_state_done(&s, 4999, false, 0));
        assert_false(joblog_state_done(&s, 5000, false, 0));
        /* --resume with retries 1: a Seq that failed once still has a try left. */
        assert_false(joblog_state_done(&s, 2, false, 1));
        assert_true(joblog_state_done(&s, 4, false, 1));
        /* --resume-failed: only the succeeded ones are done. */
        assert_true(joblog_state_done(&s, 1, true, 0));
        assert_false(joblog_state_done(&s, 2, true, 0));
        assert_true(joblog_state_done(&s, 3, true, 0));
        assert_false(joblog_state_done(&s, 4, true, 0));
        joblog_state_free(&s);
}

static void test_joblog_read_names_file_and_line(void **state) {
        char path[] = "/tmp/corral-test-joblog-XXXXXX", err[512] = "";
        struct joblog_state s = {};
        (void) state;

        int fd = mkstemp(path);
        assert_true(fd >= 0);
        FILE *f = fdopen(fd, "w");
        fprintf(f, "%s\n1\t:\t1.0\t 0.1\t0\t0\t0\t0\techo 1\n2\t:\t1.0\t0.1\t0\t0\tbad\t0\techo 2\n", JOBLOG_HEADER);
        fclose(f);
        assert_int_equal(joblog_read(path, &s, err, sizeof(err)), -EINVAL);
        char want[600];
        snprintf(want, sizeof(want), "%s:3: Exitval 'bad' is not an exit status", path);
        assert_string_equal(err, want);

        f = fopen(path, "w");
        fprintf(f, "Seq Host\n");
        fclose(f);
        assert_int_equal(joblog_read(path, &s, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, ":1: not a joblog"));

        f = fopen(path, "w");
        fprintf(f, "%s\n1\t:\t1.0\t0.1\t0\t0\t0\t0\techo 1\n3\t:\t1.0\t0.1\t0\t0\t1\t0\techo 3\n", JOBLOG_HEADER);
        fclose(f);
        assert_int_equal(joblog_read(path, &s, err, sizeof(err)), 0);
        assert_true(joblog_state_done(&s, 1, true, 0));
        assert_false(joblog_state_done(&s, 3, true, 0));
        joblog_state_free(&s);

        unlink(path);
        assert_int_equal(joblog_read(path, &s, err, sizeof(err)), 0);   /* none yet: run everything */
        assert_false(joblog_state_done(&s, 1, false, 0));
        joblog_state_free(&s);
}

#define ARGV(...) ((char *[]) { "run", __VA_ARGS__, NULL })
#define ARGC(...) ((int) (sizeof((char *[]) { "run", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(a, err, ...) run_args_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (a), (err), sizeof(err))

static void test_run_args_batch_flags(void **state) {
        struct run_args a;
        char err[256] = "";
        (void) state;

        assert_int_equal(PARSE(&a, err, "--tasks", "-", "--keep-order", "--joblog", "j", "--resume-failed",
                               "--retries", "3", "--timeout", "2s", "--shard", "1/4", "--bar", "--", "echo"), 0);
        assert_string_equal(a.tasks, "-");
        assert_true(a.keep_order && a.resume_failed && a.bar && a.retries_set);
        assert_string_equal(a.joblog, "j");
        assert_int_equal(a.retries, 3);
        assert_int_equal(a.timeout, 2 * USEC_PER_SEC);
        assert_int_equal(a.shard_index, 1);
        assert_int_equal(a.shard_count, 4);

        assert_int_equal(PARSE(&a, err, "--keep-order", "--", "echo"), -EINVAL);
        assert_string_equal(err, "--keep-order needs --tasks FILE|-");
        assert_int_equal(PARSE(&a, err, "--tasks", "f", "--resume", "--resume-failed", "--", "echo"), -EINVAL);
        assert_string_equal(err, "--resume and --resume-failed exclude each other");
        assert_int_equal(PARSE(&a, err, "--tasks", "f", "--retries", "x", "--", "echo"), -EINVAL);
        assert_string_equal(err, "--retries: 'x' is not a number (0-1000000)");
        assert_int_equal(PARSE(&a, err, "--tasks", "f", "--shard", "4/4", "--", "echo"), -EINVAL);
        assert_non_null(strstr(err, "shard 4/4 does not exist"));
        assert_int_equal(PARSE(&a, err, "--tasks", "f", "--shard", "1/0", "--", "echo"), -EINVAL);
        assert_non_null(strstr(err, "shard 1/0 does not exist"));
        assert_int_equal(PARSE(&a, err, "--tasks", "f", "--shard", "x/y", "--", "echo"), -EINVAL);
        assert_string_equal(err, "--shard: 'x/y' is not K/N (such as 0/4) or env");

        assert_int_equal(PARSE(&a, err, "--tasks", "f", "--batch", "20", "--", "echo"), 0);
        assert_int_equal(a.batch, 20);
        assert_int_equal(PARSE(&a, err, "--tasks", "f", "--", "echo"), 0);
        assert_int_equal(a.batch, 0);
        assert_int_equal(PARSE(&a, err, "--tasks", "f", "--batch", "0", "--", "echo"), -EINVAL);
        assert_string_equal(err, "--batch: '0' is not a number of lines per invocation (1-100000)");
        assert_int_equal(PARSE(&a, err, "--batch", "2", "--", "echo"), -EINVAL);
        assert_string_equal(err, "--batch needs --tasks FILE|-");

        assert_int_equal(PARSE(&a, err, "--tasks", "f", "--line-buffer", "--keep-order", "--", "echo"), 0);
        assert_true(a.line_buffer && a.keep_order && !a.ungroup);
        assert_int_equal(PARSE(&a, err, "--tasks", "f", "--ungroup", "--", "echo"), 0);
        assert_true(a.ungroup && !a.line_buffer);
        assert_int_equal(PARSE(&a, err, "--tasks", "f", "--ungroup", "--line-buffer", "--", "echo"), -EINVAL);
        assert_string_equal(err, "--line-buffer and --ungroup exclude each other");
        assert_int_equal(PARSE(&a, err, "--tasks", "f", "--ungroup", "--keep-order", "--", "echo"), -EINVAL);
        assert_non_null(strstr(err, "--ungroup and --keep-order exclude each other"));
        assert_int_equal(PARSE(&a, err, "--line-buffer", "--", "echo"), -EINVAL);
        assert_string_equal(err, "--line-buffer needs --tasks FILE|-");
        assert_int_equal(PARSE(&a, err, "--ungroup", "--", "echo"), -EINVAL);
        assert_string_equal(err, "--ungroup needs --tasks FILE|-");
}

/* --shard env: what a Kubernetes Indexed Job gives a pod, and what it may lack. */
static void test_shard_from_env(void **state) {
        static const struct {
                const char *index, *count;
                unsigned k, n;
                const char *error;   /* NULL: accepted */
        } cases[] = {
                { "0", "1", 0, 1, NULL },
                { "3", "4", 3, 4, NULL },
                { NULL, "4", 0, 0, "JOB_COMPLETION_INDEX is not set" },
                { "", "4", 0, 0, "JOB_COMPLETION_INDEX is not set" },
                { "1", NULL, 0, 0, "CORRAL_SHARDS is not set" },
                { "x", "4", 0, 0, "JOB_COMPLETION_INDEX='x' is not a shard index" },
                { "-1", "4", 0, 0, "JOB_COMPLETION_INDEX='-1' is not a shard index" },
                { "1", "0", 0, 0, "CORRAL_SHARDS='0' is not a number of shards" },
                { "1", "y", 0, 0, "CORRAL_SHARDS='y' is not a number of shards" },
                { "4", "4", 0, 0, "JOB_COMPLETION_INDEX=4 is not below CORRAL_SHARDS=4" },
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                unsigned k = 99, n = 99;
                char err[256] = "";
                print_message("case: %s %s\n", cases[i].index ?: "(unset)", cases[i].count ?: "(unset)");
                int r = shard_from_env(cases[i].index, cases[i].count, &k, &n, err, sizeof(err));
                if (!cases[i].error) {
                        assert_int_equal(r, 0);
                        assert_int_equal(k, cases[i].k);
                        assert_int_equal(n, cases[i].n);
                        continue;
                }
                assert_int_equal(r, -EINVAL);
                assert_non_null(strstr(err, cases[i].error));
                assert_int_equal(k, 99);   /* untouched on failure */
        }

        struct run_args a;
        char err[256] = "";
        assert_int_equal(setenv("JOB_COMPLETION_INDEX", "2", 1), 0);
        assert_int_equal(setenv("CORRAL_SHARDS", "5", 1), 0);
        assert_int_equal(PARSE(&a, err, "--tasks", "f", "--shard", "env", "--", "echo"), 0);
        assert_int_equal(a.shard_index, 2);
        assert_int_equal(a.shard_count, 5);
        assert_int_equal(unsetenv("CORRAL_SHARDS"), 0);
        assert_int_equal(PARSE(&a, err, "--tasks", "f", "--shard", "env", "--", "echo"), -EINVAL);
        assert_non_null(strstr(err, "CORRAL_SHARDS is not set"));
        assert_int_equal(unsetenv("JOB_COMPLETION_INDEX"), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_argv_substitution),
                cmocka_unit_test(test_argv_of_several_lines),
                cmocka_unit_test(test_command_line_quotes_like_a_shell),
                cmocka_unit_test(test_line_reader_splits_across_reads),
                cmocka_unit_test(test_line_reader_refuses_a_line_too_long),
                cmocka_unit_test(test_order_buffer_puts_outputs_back_in_order),
                cmocka_unit_test(test_output_cut_keeps_lines_whole),
                cmocka_unit_test(test_bar_text),
                cmocka_unit_test(test_joblog_line_round_trip),
                cmocka_unit_test(test_joblog_huge_times_format),
                cmocka_unit_test(test_joblog_refusals),
                cmocka_unit_test(test_resume_sets),
                cmocka_unit_test(test_joblog_read_names_file_and_line),
                cmocka_unit_test(test_run_args_batch_flags),
                cmocka_unit_test(test_shard_from_env),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
