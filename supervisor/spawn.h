/* SPDX-License-Identifier: MIT */
/*
 * Starting one worker: fork, then in the child a clean signal state, its own
 * process group, death with its parent, the fds it is meant to inherit, and
 * exec of the argv (no shell).
 */
#pragma once

#include <sched.h>
#include <sys/types.h>

struct spawn_request {
        char *const *argv;       /* argv[0] is looked up in PATH */
        char *const *envp;       /* the complete environment */
        const char *cwd;         /* NULL: corral's own */
        const int *keep_fds;     /* close-on-exec fds the worker inherits under the same
                                  * numbers (shared segments); the parent's stay as they are */
        size_t n_keep_fds;
        const cpu_set_t *affinity;   /* workers.placement; NULL: the scheduler decides */
        const int *stdio;        /* stream mode: {stdin, stdout} of the worker (fds above 2,
                                  * close-on-exec); NULL: it inherits corral's */
};

/* Starts the worker. Returns its pid (a process group leader), or a negative
 * errno: the fork's, or the reason exec failed in the child (-ENOENT for a
 * missing command), which the child reports before it exits. */
pid_t spawn_worker(const struct spawn_request *req);

/* A copy of `base` with `extra` ("KEY=VALUE", replacing keys of base) added.
 * The strings are shared with the inputs: free the array only. NULL on ENOMEM. */
char **env_merge(char *const *base, char *const *extra);
