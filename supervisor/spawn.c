/* SPDX-License-Identifier: MIT */
/*
 * Creating a worker or a task. clone(CLONE_VM|CLONE_VFORK), as posix_spawn()
 * does: no page tables are copied, so a spawn costs the same whatever corral's
 * size, and the parent resumes only once the child has exec'd or failed. A
 * failed exec writes its errno into a close-on-exec pipe, so the parent knows
 * at once whether the command could be executed and tells the user the OS's
 * reason instead of restarting a command that can never run. (A pipe rather
 * than shared memory: valgrind runs CLONE_VFORK children as forks. glibc's
 * posix_spawn cannot set PR_SET_PDEATHSIG, hence the hand-made version.)
 * The child also becomes workers.user/group, from ids corral resolved
 * beforehand: the user database is no place for a child in corral's memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "supervisor/spawn.h"

#define SPAWN_STACK_SIZE (256u * 1024u)

/* Without close_range(), the fds marked close-on-exec one by one: corral's
 * own stay far below this (one per worker and a few). */
#define SPAWN_FD_SCAN_MAX 65536

/* The raw system calls, not glibc's setuid() & co.: those make every thread of
 * the process change ids with it (POSIX), signalling corral's threads from a
 * child that merely shares their memory and taking locks they may hold. This
 * is what glibc's own posix_spawn does. 32-bit ABIs have 32-bit-id variants. */
#ifdef SYS_setresuid32
#  define SYS_SETGROUPS SYS_setgroups32
#  define SYS_SETRESGID SYS_setresgid32
#  define SYS_SETRESUID SYS_setresuid32
#else
#  define SYS_SETGROUPS SYS_setgroups
#  define SYS_SETRESGID SYS_setresgid
#  define SYS_SETRESUID SYS_setresuid
#endif

/* Groups first, then the gid, then the uid: each needs the privilege the next
 * one gives up. */
static int become(const struct worker_identity *id) {
        if (id->set_groups && syscall(SYS_SETGROUPS, id->n_groups, id->groups) < 0)
                return -1;
        if (id->set_gid && syscall(SYS_SETRESGID, id->gid, id->gid, id->gid) < 0)
                return -1;
        if (id->set_uid && syscall(SYS_SETRESUID, id->uid, id->uid, id->uid) < 0)
                return -1;
        return 0;
}

/* Writes the decimal pid after the '=' of entry: only stores, no library,
 * no array of its own (see place_listen_fds). */
static void write_pid(char *entry, pid_t pid) {
        char *p = strchr(entry, '=') + 1;
        size_t n = 1;
        for (pid_t rest = pid / 10; rest > 0 && n < SPAWN_PID_DIGITS; rest /= 10)
                n++;
        p[n] = '\0';
        do
                p[--n] = (char) ('0' + pid % 10);
        while ((pid /= 10) > 0 && n > 0);
}

/* The listening sockets onto 3, 4, ...: first all copied above the range, so
 * that placing one cannot overwrite another still to be placed. The copies
 * are close-on-exec; dup2() clears the flag on the placed ones. `high` is
 * the parent's (no arrays on the child's stack: a child that execs never
 * leaves its frames, and the sanitizers' bookkeeping of the shared stack
 * would outlive it). */
static int place_listen_fds(const int *fds, size_t n, int *high) {
        for (size_t i = 0; i < n; i++)
                if ((high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3 + (int) n)) < 0)
                        return -1;
        for (size_t i = 0; i < n; i++)
                if (dup2(high[i], 3 + (int) i) < 0)
                        return -1;
        return 0;
}

struct spawn_child {
        const struct spawn_request *req;
        pid_t parent;
        int report_fd;           /* where the child writes its errno when it cannot exec */
        int listen_high[SPAWN_LISTEN_MAX];   /* the child's scratch for place_listen_fds() */
};

/* Runs in the child, on its own stack but in corral's memory until exec: only
 * system calls. */
static int child_main(void *userdata) {
        struct spawn_child *a = userdata;
        const struct spawn_request *req = a->req;
        int report_fd = a->report_fd;
        sigset_t none;

        /* corral blocks the signals its event loop handles; the mask and ignored
         * dispositions survive exec, and the worker must start clean. Without
         * CLONE_SIGHAND the child has its own table: this changes only its own. */
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        (void) signal(SIGPIPE, SIG_DFL);

        if (setpgid(0, 0) < 0)
                goto fail;

        /* Before PR_SET_PDEATHSIG: a change of ids clears it. */
        if (req->identity && become(req->identity) < 0)
                goto fail;

        /* Die with corral. PDEATHSIG follows the creating thread, and corral may
         * have died before this line: then our parent is already someone else. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                goto fail;
        if (getppid() != a->parent)
                _exit(127);

        if (req->affinity && sched_setaffinity(0, sizeof(cpu_set_t), req->affinity) < 0)
                goto fail;

        if (req->cwd && chdir(req->cwd) < 0)
                goto fail;

        /* dup2() clears close-on-exec on the copy; the originals close at exec.
         * An fd that already has its place (corral's stdout closed, say) only
         * needs the flag cleared. */
        for (int i = 0; req->stdio && i < 3; i++) {
                int fd = req->stdio[i];
                if (fd >= 0 && (fd == i ? fcntl(fd, F_SETFD, 0) : dup2(fd, i)) < 0)
                        goto fail;
        }

        /* A worker sees fds 0-2 and what it is given, nothing else: not even
         * what a library opened in corral without O_CLOEXEC (libproc2's
         * /proc/stat and /proc/meminfo). Marking them here, in the child,
         * leaves corral's own fds untouched; the few meant for the worker are
         * cleared again below. */
        if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
                for (int fd = 3; fd < SPAWN_FD_SCAN_MAX; fd++)
                        (void) fcntl(fd, F_SETFD, FD_CLOEXEC);   /* before Linux 5.11 */

        for (size_t i = 0; i < req->n_keep_fds; i++)
                if (fcntl(req->keep_fds[i], F_SETFD, 0) < 0)
                        goto fail;

        if (req->n_listen_fds > 0) {
                /* The report pipe must not be among the places the sockets take. */
                if (report_fd < 3 + (int) req->n_listen_fds &&
                    (report_fd = fcntl(report_fd, F_DUPFD_CLOEXEC, 3 + (int) req->n_listen_fds)) < 0)
                        _exit(127);
                if (place_listen_fds(req->listen_fds, req->n_listen_fds, a->listen_high) < 0)
                        goto fail;
        }
        /* Our own pid, in memory we share with the parent until exec: it is
         * stopped meanwhile and owns the buffer. */
        if (req->pid_env)
                write_pid(req->pid_env, (pid_t) syscall(SYS_getpid));

        if (req->path)
                execve(req->path, req->argv, req->envp);
        else
                execvpe(req->argv[0], req->argv, req->envp);
fail: {
        int error = errno ? errno : EIO;
        (void) !write(report_fd, &error, sizeof(error));
        _exit(127);
}
}

pid_t spawn_worker(const struct spawn_request *req) {
        /* One stack serves every spawn: they happen one at a time, on the main
         * thread, and the child leaves it when it execs. */
        static void *stack;
        if (!stack) {
                void *p = mmap(NULL, SPAWN_STACK_SIZE, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
                if (p == MAP_FAILED)
                        return -errno;
                stack = p;
        }

        /* A segment in the place of a socket would be lost: corral opens
         * its sockets before anything else, so this is a bug, not a user's error. */
        if (req->n_listen_fds > SPAWN_LISTEN_MAX)
                return -E2BIG;
        for (size_t i = 0; i < req->n_keep_fds; i++)
                if (req->keep_fds[i] >= 3 && req->keep_fds[i] < 3 + (int) req->n_listen_fds)
                        return -EBADF;

        _cleanup_(closep) int report_read = -EBADF, report_write = -EBADF;
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        report_read = fds[0];
        report_write = fds[1];

        struct spawn_child a = { .req = req, .parent = getpid(), .report_fd = report_write };
        pid_t pid = clone(child_main, (char *) stack + SPAWN_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
        if (pid < 0)
                return -errno;
        report_write = safe_close(report_write);

        /* EOF once the child's copy closed at exec (at once, but for valgrind). */
        int error = 0;
        ssize_t n;
        do
                n = read(report_read, &error, sizeof(error));
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t) sizeof(error)) {
                /* It never ran: reap it here. */
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

/* Whether `ids` may search (a directory) or execute (a file) `path`: the
 * mode bits as the kernel reads them for that user, or access() for corral's
 * own ids. 0 or a negative errno. */
static int may_execute(const char *path, const struct worker_identity *id) {
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        if (!id || (!id->set_uid && !id->set_gid))
                return faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) < 0 ? -errno : 0;

        uid_t uid = id->set_uid ? id->uid : geteuid();
        gid_t gid = id->set_gid ? id->gid : getegid();
        mode_t bit = S_IXOTH;
        if (uid == 0)
                bit = S_ISDIR(st.st_mode) ? 0 : (S_IXUSR | S_IXGRP | S_IXOTH);
        else if (st.st_uid == uid)
                bit = S_IXUSR;
        else {
                bool member = st.st_gid == gid;
                for (size_t i = 0; id->set_groups && i < id->n_groups && !member; i++)
                        member = id->groups[i] == st.st_gid;
                if (member)
                        bit = S_IXGRP;
        }
        return bit == 0 || (st.st_mode & bit) ? 0 : -EACCES;
}

/* One candidate file: an executable regular file, or why not. */
static int check_file(const char *path, const struct worker_identity *id) {
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EACCES;          /* what execve() answers for a directory */
        return may_execute(path, id);
}

/* dir/name, dir taken relative to cwd when it is relative (and cwd set). */
static int join(char *buf, size_t size, const char *cwd, const char *dir, const char *name) {
        int n;
        if (dir[0] != '/' && cwd)
                n = snprintf(buf, size, "%s/%s%s%s", cwd, dir, *dir ? "/" : "", name);
        else
                n = snprintf(buf, size, "%s%s%s", dir, *dir ? "/" : "", name);
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

static int check_executable(const char *name, const char *cwd, const struct worker_identity *id) {
        char path[PATH_MAX];
        int r;

        if (!name || !*name)
                return -ENOENT;
        if (strchr(name, '/')) {
                r = join(path, sizeof(path), cwd, "", name);
                return r < 0 ? r : check_file(name[0] == '/' || !cwd ? name : path, id);
        }
        /* As execvpe(): corral's PATH, EACCES if some candidate was refused. */
        const char *search = getenv("PATH");
        if (!search)
                search = "/bin:/usr/bin";
        int result = -ENOENT;
        for (const char *p = search;; p++) {
                const char *end = strchrnul(p, ':');
                char dir[PATH_MAX];
                size_t len = (size_t) (end - p);
                if (len < sizeof(dir)) {
                        memcpy(dir, p, len);
                        dir[len] = '\0';
                        r = join(path, sizeof(path), cwd, len ? dir : ".", name);
                        if (r >= 0)
                                r = check_file(path, id);
                        if (r >= 0)
                                return 0;
                        if (r == -EACCES)
                                result = r;
                }
                if (!*end)
                        break;
                p = end;
        }
        return result;
}

int spawn_check(char *const *argv, const char *cwd, const struct worker_identity *identity,
                enum spawn_check_what *ret_what) {
        int r;
        if (cwd) {
                struct stat st;
                r = stat(cwd, &st) < 0 ? -errno : !S_ISDIR(st.st_mode) ? -ENOTDIR : may_execute(cwd, identity);
                if (r < 0) {
                        *ret_what = SPAWN_CHECK_CWD;
                        return r;
                }
        }
        r = check_executable(argv ? argv[0] : NULL, cwd, identity);
        if (r < 0)
                *ret_what = SPAWN_CHECK_COMMAND;
        return r;
}
