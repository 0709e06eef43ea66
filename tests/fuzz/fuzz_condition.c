/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: condition_parse() on arbitrary text. Besides the
 * sanitizers' findings, it checks the parser's contract: a failure names an
 * offset inside the text and a message; a parsed condition's canonical text
 * parses again to the same text, reads the same signals, and evaluates
 * without trouble against an empty and a full snapshot.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/condition.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *text_of(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        if (!s)
                abort();
        memcpy(s, data, size);
        s[size] = '\0';
        return s;
}

static void check_round_trip(const struct condition *c) {
        struct condition *again = NULL;
        char text[16384], text2[16384];   /* 256 nodes of at most ~20 characters */

        if (condition_format(c, text, sizeof(text)) < 0)
                abort();
        if (condition_parse(text, &again, NULL, NULL, 0) != 0)
                abort();
        if (condition_format(again, text2, sizeof(text2)) < 0 || strcmp(text, text2) != 0)
                abort();
        if (condition_signals(again) != condition_signals(c))
                abort();
        condition_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct condition *c = NULL;
        char error[256] = "";
        size_t offset = SIZE_MAX;
        char *text = text_of(data, size);
        size_t len = strlen(text);   /* the parser sees up to the first NUL */

        int r = condition_parse(text, &c, &offset, error, sizeof(error));
        if (r == -EINVAL) {
                if (c || offset > len || error[0] == '\0')
                        abort();
        } else if (r == 0) {
                struct signals none = {}, all = {};
                for (int i = 0; i < _SIGNAL_MAX; i++)
                        signals_set(&all, (enum signal_id) i, 50.0);
                (void) condition_eval(c, &none);
                (void) condition_eval(c, &all);
                check_round_trip(c);
                condition_free(c);
        } else if (r != -ENOMEM)
                abort();
        free(text);
        return 0;
}
