/* SPDX-License-Identifier: MIT */
/*
 * fork + exec of a worker. The child reports a failed exec through a
 * close-on-exec pipe, so the parent knows at once whether the command could
 * be executed, and tells the user the OS's reason instead of restarting a
 * command that can never run.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "supervisor/spawn.h"

/* Only async-signal-safe calls from here on: the child only execs or _exit()s. */
static _Noreturn void child_exec(const struct spawn_request *req, pid_t parent, int report_fd) {
        sigset_t none;
        int error;

        /* corral blocks the signals its event loop handles; the mask and ignored
         * dispositions survive exec, and the worker must start clean. */
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        (void) signal(SIGPIPE, SIG_DFL);

        if (setpgid(0, 0) < 0)
                goto fail;

        /* Die with corral. PDEATHSIG follows the creating thread, and corral may
         * have died before this line: then our parent is already someone else. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                goto fail;
        if (getppid() != parent)
                _exit(127);

        if (req->affinity && sched_setaffinity(0, sizeof(cpu_set_t), req->affinity) < 0)
                goto fail;

        if (req->cwd && chdir(req->cwd) < 0)
                goto fail;

        /* dup2() clears close-on-exec on the copy; the originals close at exec. */
        if (req->stdio && (dup2(req->stdio[0], STDIN_FILENO) < 0 || dup2(req->stdio[1], STDOUT_FILENO) < 0))
                goto fail;

        /* Every fd of corral's is close-on-exec; these few are meant for the
         * worker. Clearing the flag here, after fork, leaves corral's own fds
         * untouched, so a concurrent spawn never leaks them elsewhere. */
        for (size_t i = 0; i < req->n_keep_fds; i++)
                if (fcntl(req->keep_fds[i], F_SETFD, 0) < 0)
                        goto fail;

        execvpe(req->argv[0], req->argv, req->envp);
fail:
        error = errno;
        (void) !write(report_fd, &error, sizeof(error));
        _exit(127);
}

pid_t spawn_worker(const struct spawn_request *req) {
        _cleanup_(closep) int report_read = -EBADF, report_write = -EBADF;
        int fds[2];

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        report_read = fds[0];
        report_write = fds[1];

        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                child_exec(req, parent, report_write);

        /* Also from the parent, so that signalling the group works from the
         * first instant; EACCES means the child already exec'd, and set it. */
        (void) setpgid(pid, pid);

        report_write = safe_close(report_write);
        int error = 0;
        ssize_t n;
        do
                n = read(report_read, &error, sizeof(error));
        while (n < 0 && errno == EINTR);

        if (n == (ssize_t) sizeof(error)) {
                /* The child has exited or is about to: reap it here, it never ran. */
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                return -(error > 0 ? error : EIO);
        }
        return pid;
}

char **env_merge(char *const *base, char *const *extra) {
        size_t n_base = strv_length(base), n_extra = strv_length(extra), n = 0;
        char **env = calloc(n_base + n_extra + 1, sizeof(char *));
        if (!env)
                return NULL;

        for (size_t i = 0; i < n_base; i++) {
                const char *eq = strchr(base[i], '=');
                size_t key_len = eq ? (size_t) (eq - base[i]) + 1 : strlen(base[i]);
                bool replaced = false;
                for (size_t j = 0; j < n_extra && !replaced; j++)
                        replaced = strncmp(extra[j], base[i], key_len) == 0;
                if (!replaced)
                        env[n++] = base[i];
        }
        for (size_t j = 0; j < n_extra; j++)
                env[n++] = extra[j];
        return env;
}
