/* SPDX-License-Identifier: MIT */
/*
 * Prints one JSON line describing its invocation: {"args": [ARGV[1..]],
 * "seq": $CORRAL_TASK_SEQ, "task": $CORRAL_TASK} (strings; null when unset),
 * for the e2e tests of --batch and --shard, which check that each line reaches
 * a task unharmed. C, not Python: a hundred invocations of an interpreter on
 * a busy machine took minutes.
 */
#include <stdio.h>
#include <stdlib.h>

/* A JSON string: quotes, backslashes and control bytes escaped; other bytes
 * as they are (the tests' lines are ASCII or UTF-8). */
static void put_json(const char *s) {
        if (!s) {
                fputs("null", stdout);
                return;
        }
        putchar('"');
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == '"' || *p == '\\')
                        printf("\\%c", *p);
                else if (*p < 0x20)
                        printf("\\u%04x", *p);
                else
                        putchar(*p);
        }
        putchar('"');
}

int main(int argc, char **argv) {
        fputs("{\"args\": [", stdout);
        for (int i = 1; i < argc; i++) {
                if (i > 1)
                        fputs(", ", stdout);
                put_json(argv[i]);
        }
        fputs("], \"seq\": ", stdout);
        put_json(getenv("CORRAL_TASK_SEQ"));
        fputs(", \"task\": ", stdout);
        put_json(getenv("CORRAL_TASK"));
        fputs("}\n", stdout);
        return ferror(stdout) ? 1 : 0;
}
