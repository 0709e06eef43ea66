/* SPDX-License-Identifier: MIT */
/*
 * Starting one worker or task: a child with a clean signal state, its own
 * process group, death with its parent, the fds it is meant to inherit, and
 * exec of the argv (no shell). The one place corral creates processes.
 */
#pragma once

#include <sched.h>
#include <sys/types.h>

#include "conf/config.h"

struct spawn_request {
        const char *path;        /* the program, already looked up; NULL: argv[0] in PATH */
        char *const *argv;
        char *const *envp;       /* the complete environment */
        const char *cwd;         /* NULL: corral's own */
        const int *keep_fds;     /* close-on-exec fds the worker inherits under the same
                                  * numbers (shared segments); the parent's stay as they are */
        size_t n_keep_fds;
        const cpu_set_t *affinity;   /* workers.placement; NULL: the scheduler decides */
        const int *stdio;        /* {stdin, stdout, stderr} of the worker (close-on-exec
                                  * fds; a negative one: corral's); NULL: it inherits corral's */
        const struct worker_identity *identity;  /* workers.user/group, resolved; NULL: corral's */
        const int *listen_fds;   /* close-on-exec sockets the worker gets as fds 3, 4, ... in this
                                  * order (sd_listen_fds(3)); none of keep_fds may be among 3..3+n-1 */
        size_t n_listen_fds;     /* at most SPAWN_LISTEN_MAX */
        char *pid_env;           /* NULL, or an entry of envp ending in '=' followed by room for
                                  * SPAWN_PID_DIGITS characters: the child writes its own pid there
                                  * (LISTEN_PID, which the parent cannot know before the spawn) */
};

#define SPAWN_LISTEN_MAX 64
#define SPAWN_PID_DIGITS 12

/* Starts the process. Returns its pid (a process group leader), or a negative
 * errno: clone()'s, or the reason the child could not become the identity or
 * exec (-ENOENT for a missing command, -EPERM when corral may not change ids;
 * the child is then already reaped). Call from the main thread:
 * PR_SET_PDEATHSIG follows the thread that created the child. */
pid_t spawn_worker(const struct spawn_request *req);

/* A copy of `base` with `extra` ("KEY=VALUE", replacing keys of base) added.
 * The strings are shared with the inputs: free the array only. NULL on ENOMEM. */
char **env_merge(char *const *base, char *const *extra);

enum spawn_check_what {
        SPAWN_CHECK_COMMAND,     /* argv[0] */
        SPAWN_CHECK_CWD,         /* workers.cwd */
};

/* Whether a worker could start: cwd an accessible directory, argv[0] (looked
 * up in PATH unless it holds a '/', relative to cwd) an executable regular
 * file, for identity (NULL: corral's own ids). Returns 0, or the negative
 * errno chdir() or execve() would answer, *ret_what saying which part
 * (written only on failure). What a look cannot tell (a broken binary, a
 * missing interpreter) only the spawn finds. */
int spawn_check(char *const *argv, const char *cwd, const struct worker_identity *identity,
                enum spawn_check_what *ret_what);
