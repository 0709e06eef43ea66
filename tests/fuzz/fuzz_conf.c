/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: conf_load_text() on arbitrary bytes, as if they were a
 * configuration file. Besides the sanitizers' findings, it checks the
 * loader's contract: errors are reported iff the load fails with -EINVAL,
 * every diagnostic names the file, and a loaded config's conditions format
 * to text that parses again.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "policy/condition.h"

#define NAME "fuzz.yaml"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct conf_diagnostics diag = {};
        struct corral_config c;
        char text[1024];

        int r = conf_load_text(NAME, data, size, &c, &diag);
        if (r != 0 && r != -EINVAL && r != -EFBIG && r != -ENOMEM)
                abort();
        if ((r == -EINVAL) != (diag.n_errors > 0))
                abort();
        for (size_t i = 0; i < diag.n_items; i++)
                if (strncmp(diag.items[i].message, NAME ":", strlen(NAME ":")) != 0)
                        abort();
        if (r == 0) {
                for (size_t i = 0; i < c.policy.n_rules; i++) {
                        struct condition *again = NULL;
                        if (!c.policy.rules[i].when ||
                            condition_format(c.policy.rules[i].when, text, sizeof(text)) < 0)
                                continue;   /* a long condition may not fit: not a bug */
                        if (condition_parse(text, &again, NULL, NULL, 0) != 0)
                                abort();
                        condition_free(again);
                }
                config_done(&c);
        }
        conf_diagnostics_done(&diag);
        return 0;
}
