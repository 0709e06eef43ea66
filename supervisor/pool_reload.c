/* SPDX-License-Identifier: MIT */
/*
 * What a new configuration means for the pool's workers: whether they are to
 * be replaced (their command, environment, directory or user changed) and
 * whether the new command can run at all, asked before anything changes.
 */
#include <string.h>

#include "supervisor/identity.h"
#include "supervisor/log.h"
#include "supervisor/pool_reload.h"
#include "supervisor/spawn.h"

static bool strv_equal(char *const *a, char *const *b) {
        size_t n = strv_length(a);
        if (n != strv_length(b))
                return false;
        for (size_t i = 0; i < n; i++)
                if (strcmp(a[i], b[i]) != 0)
                        return false;
        return true;
}

static bool streq_null(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

/* A new command that cannot run is refused before anything changes. */
int pool_check_command(const struct corral_config *config) {
        const struct workers_config *wc = &config->workers;
        enum spawn_check_what what;
        char as[256];

        int r = spawn_check(config->command, wc->cwd, &wc->identity, &what);
        if (r >= 0)
                return 0;
        identity_describe(wc, as, sizeof(as));
        if (what == SPAWN_CHECK_CWD)
                return log_error_errno(r, "the new workers.cwd '%s' cannot be used%s: %m; the running workers stay",
                                       wc->cwd, as);
        return log_error_errno(r, "the new command cannot run: '%s'%s: %m; the running workers stay",
                               config->command[0], as);
}

bool pool_config_replaces_workers(const struct corral_config *old, const struct corral_config *new) {
        return !strv_equal(old->command, new->command) || !strv_equal(old->workers.env, new->workers.env) ||
               !streq_null(old->workers.cwd, new->workers.cwd) ||
               !identity_equal(&old->workers.identity, &new->workers.identity);
}
