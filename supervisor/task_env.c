/* SPDX-License-Identifier: MIT */
/*
 * What a task is started with: its program looked up in PATH once (not per
 * task), and its environment built once with five per-task entries at the
 * end that slot_start() fills in.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern char **environ;
#include <sys/stat.h>

#include "supervisor/task_env.h"
#include "supervisor/log.h"
#include "supervisor/spawn.h"

/* command[0] as execvpe would find it, resolved once instead of per task. */
char *task_resolve_command(const char *name) {
        if (strchr(name, '/'))
                return strdup(name);
        const char *path = getenv("PATH");
        if (!path)
                path = "/bin:/usr/bin";
        for (const char *p = path; p; ) {
                const char *colon = strchr(p, ':');
                size_t n = colon ? (size_t) (colon - p) : strlen(p);
                char *full;
                if (asprintf(&full, "%.*s%s%s", (int) n, p, n ? "/" : "", name) < 0)
                        return NULL;
                struct stat st;
                if (access(full, X_OK) == 0 && stat(full, &st) == 0 && S_ISREG(st.st_mode))
                        return full;
                free(full);
                p = colon ? colon + 1 : NULL;
        }
        /* Not found: let exec report it, with its own errno. */
        return strdup(name);
}

/* The environment of every task: ours, the configured variables, and five
 * per-task entries at the end (CORRAL_WORKER_ID, _MAX, TASK_SEQ, TASK, and
 * TASK_ID, which is NULL, the end of the list, unless the source has ids). */
int batch_build_env(struct batch *b) {
        const struct workers_config *wc = &b->config->workers;
        static const char *const ours[] = { "CORRAL_WORKER_ID=", "CORRAL_WORKERS_MAX=", "CORRAL_TASK_SEQ=",
                                            "CORRAL_TASK=", "CORRAL_TASK_ID=" };
        size_t n_user = strv_length(wc->env), n_shm = b->shm ? strv_length(b->shm->env) : 0, n = 0;
        _cleanup_free_ char **extra = calloc(n_user + n_shm + ELEMENTSOF(ours) + 1, sizeof(char *));
        if (!extra)
                return -ENOMEM;
        for (size_t i = 0; i < n_user; i++)
                extra[n++] = wc->env[i];
        for (size_t i = 0; i < n_shm; i++)
                extra[n++] = b->shm->env[i];
        for (size_t i = 0; i < ELEMENTSOF(ours); i++)
                extra[n++] = (char *) ours[i];
        char **envp = env_merge(environ, extra);
        if (!envp)
                return -ENOMEM;
        free(b->envp);
        b->envp = envp;
        b->env_task = strv_length(envp) - ELEMENTSOF(ours);
        snprintf(b->max_var, sizeof(b->max_var), "CORRAL_WORKERS_MAX=%u", b->max);

        /* What execve() leaves for the lines: the input's longest line follows. */
        struct arg_limits limits;
        arg_limits_system(&limits);
        arg_budget_init(&b->arg_budget, &limits, b->config->command, arg_strv_bytes(envp, b->env_task), ours[3],
                        ELEMENTSOF(ours) - 1, sizeof(b->id_var) - 1);
        size_t line_max = arg_budget_line_max(&b->arg_budget);
        b->reader.max = line_max > 0 ? line_max : 1;
        return 0;
}
