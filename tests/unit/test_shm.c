/* SPDX-License-Identifier: MIT */
/*
 * Shared segments (supervisor/shm.c): loading from a file and a command byte
 * for byte, the seals as a worker meets them, every refusal with its message,
 * change detection for reloads, generations and reference counts of sets, and
 * the fds a spawned worker inherits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervisor/shm.h"
#include "supervisor/spawn.h"
#include "tests/unit/fixture_tree.h"

extern char **environ;

static char dir[] = "/tmp/corral-test-shm-XXXXXX";

static char *tmp_path(const char *name) {
        static char buf[4][256];
        static unsigned next;
        char *p = buf[next++ % 4];
        snprintf(p, 256, "%s/%s", dir, name);
        return p;
}

/* Deterministic bytes, not all one value, so that an offset error shows. */
static uint8_t *pattern(size_t size, uint32_t seed) {
        uint8_t *b = malloc(size);
        assert_non_null(b);
        uint32_t x = seed | 1;
        for (size_t i = 0; i < size; i++) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                b[i] = (uint8_t) x;
        }
        return b;
}

static void write_file(const char *path, const void *data, size_t size) {
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, size, f), size);
        assert_int_equal(fclose(f), 0);
}

static void assert_segment_is(const struct shm_segment *s, const void *data, size_t size) {
        assert_int_equal(s->size, size);
        assert_true(s->fd >= 3);
        void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, s->fd, 0);
        assert_true(p != MAP_FAILED);
        assert_memory_equal(p, data, size);
        munmap(p, size);
}

static struct shared_config file_config(const char *name, const char *path) {
        return (struct shared_config) { .name = (char *) name, .path = (char *) path };
}

static struct shared_config command_config(const char *name, char **argv) {
        return (struct shared_config) { .name = (char *) name, .command = argv };
}

/* Loads what must fail; returns the message. */
static const char *load_error(const struct shared_config *sc, int expected) {
        static struct shm_error err;
        struct shm_segment *s = NULL;
        memset(&err, 0, sizeof(err));
        int r = shm_segment_load(sc, 1, &s, &err);
        if (r != expected)
                fail_msg("expected %d, got %d (%s)", expected, r, err.message);
        assert_null(s);
        return err.message;
}

static int setup(void **state) {
        (void) state;
        return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
        (void) state;
        fixture_remove(dir);
        return 0;
}

/* ------------------------------------------------------------------------ */

static void test_load_file_byte_for_byte(void **state) {
        /* Not a multiple of the page size, over many pages. */
        size_t size = 3 * 1024 * 1024 + 123;
        _cleanup_free_ uint8_t *data = pattern(size, 1);
        struct shared_config sc = file_config("refdata", tmp_path("ref.bin"));
        struct shm_segment *s = NULL;
        struct shm_error err = {};
        (void) state;

        write_file(sc.path, data, size);
        assert_int_equal(shm_segment_load(&sc, 7, &s, &err), 0);
        assert_segment_is(s, data, size);
        assert_string_equal(s->name, "refdata");
        assert_int_equal(s->generation, 7);
        assert_false(s->huge);
        assert_true(s->load_usec > 0);
        /* corral keeps it close-on-exec: only spawn's keep_fds hands it on. */
        assert_int_equal(fcntl(s->fd, F_GETFD), FD_CLOEXEC);
        shm_segment_unref(s);
}

static void test_load_command_byte_for_byte(void **state) {
        /* Larger than a pipe buffer, so the copy loops. */
        size_t size = 5 * 1024 * 1024 + 7;
        _cleanup_free_ uint8_t *data = pattern(size, 2);
        char *path = tmp_path("cmd.bin");
        char *argv[] = { "cat", path, NULL };
        struct shared_config sc = command_config("table", argv);
        struct shm_segment *s = NULL;
        struct shm_error err = {};
        (void) state;

        write_file(path, data, size);
        assert_int_equal(shm_segment_load(&sc, 1, &s, &err), 0);
        assert_segment_is(s, data, size);
        s = shm_segment_unref(s);

        /* Bytes a shell would mangle, and a NUL: no shell is involved. */
        char *printf_argv[] = { "printf", "a b\\000$HOME'\n", NULL };
        sc = command_config("small", printf_argv);
        assert_int_equal(shm_segment_load(&sc, 1, &s, &err), 0);
        assert_segment_is(s, "a b\0$HOME'\n", 11);
        shm_segment_unref(s);
}

static void test_sealed_against_every_write(void **state) {
        char *argv[] = { "printf", "0123456789", NULL };
        struct shared_config sc = command_config("sealed", argv);
        struct shm_segment *s = NULL;
        struct shm_error err = {};
        char path[64];
        (void) state;

        assert_int_equal(shm_segment_load(&sc, 1, &s, &err), 0);
        int seals = fcntl(s->fd, F_GET_SEALS);
        assert_true(seals >= 0);
        assert_int_equal(seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
                         F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);

        /* The fd a worker gets is read-only ... */
        assert_int_equal(fcntl(s->fd, F_GETFL) & O_ACCMODE, O_RDONLY);
        assert_int_equal(write(s->fd, "x", 1), -1);
        assert_int_equal(errno, EBADF);
        assert_true(mmap(NULL, 10, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0) == MAP_FAILED);

        /* ... and reopening it for writing meets the seals. */
        snprintf(path, sizeof(path), "/proc/self/fd/%d", s->fd);
        _cleanup_(closep) int rw = open(path, O_RDWR | O_CLOEXEC);
        assert_true(rw >= 0);
        assert_int_equal(write(rw, "x", 1), -1);
        assert_int_equal(errno, EPERM);
        assert_int_equal(pwrite(rw, "x", 1, 3), -1);
        assert_int_equal(errno, EPERM);
        assert_true(mmap(NULL, 10, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0) == MAP_FAILED);
        assert_int_equal(errno, EPERM);
        assert_int_equal(ftruncate(rw, 0), -1);
        assert_int_equal(errno, EPERM);
        assert_int_equal(ftruncate(rw, 1 << 20), -1);
        assert_int_equal(errno, EPERM);
        assert_int_equal(fcntl(rw, F_ADD_SEALS, 0), -1);  /* F_SEAL_SEAL: no seal can be removed or added */
        assert_int_equal(errno, EPERM);

        /* A private writable map is the worker's own copy-on-write scratch. */
        char *p = mmap(NULL, 10, PROT_READ | PROT_WRITE, MAP_PRIVATE, rw, 0);
        assert_true(p != MAP_FAILED);
        p[0] = 'X';
        munmap(p, 10);
        char c;
        assert_int_equal(pread(s->fd, &c, 1, 0), 1);
        assert_int_equal(c, '0');
        shm_segment_unref(s);
}

static void test_missing_file(void **state) {
        struct shared_config sc = file_config("refdata", "/nonexistent/ref.bin");
        (void) state;
        assert_string_equal(load_error(&sc, -ENOENT),
                            "shared segment 'refdata': cannot open /nonexistent/ref.bin: No such file or directory");
}

static void test_unreadable_file(void **state) {
        char *path = tmp_path("secret.bin");
        struct shared_config sc = file_config("secret", path);
        int fds[2];
        (void) state;

        char expected[512];
        snprintf(expected, sizeof(expected), "shared segment 'secret': cannot open %s: Permission denied", path);
        write_file(path, "data", 4);
        assert_int_equal(chmod(path, 0), 0);
        if (geteuid() != 0) {
                assert_string_equal(load_error(&sc, -EACCES), expected);
                return;
        }
        /* root reads anything: try as nobody, in a child. */
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct shm_error err = {};
                struct shm_segment *s = NULL;
                if (setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(3);
                int r = shm_segment_load(&sc, 1, &s, &err);
                (void) !write(fds[1], err.message, strlen(err.message));
                _exit(r == -EACCES ? 0 : 1);
        }
        close(fds[1]);
        char msg[1024] = "";
        ssize_t n = read(fds[0], msg, sizeof(msg) - 1);
        close(fds[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(n > 0);
        msg[n] = '\0';
        assert_string_equal(msg, expected);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_directory_and_empty_file(void **state) {
        struct shared_config sc = file_config("d", dir);
        char expected[512];
        (void) state;

        snprintf(expected, sizeof(expected), "shared segment 'd': %s is a directory", dir);
        assert_string_equal(load_error(&sc, -EISDIR), expected);

        sc = file_config("e", tmp_path("empty.bin"));
        write_file(sc.path, "", 0);
        snprintf(expected, sizeof(expected), "shared segment 'e': %s is empty", sc.path);
        assert_string_equal(load_error(&sc, -ENODATA), expected);
}

static void test_failing_commands(void **state) {
        char *exit1[] = { "sh", "-c", "echo partial; exit 1", NULL };
        char *killed[] = { "sh", "-c", "echo partial; kill -9 $$", NULL };
        char *empty[] = { "true", NULL };
        char *missing[] = { "corral-no-such-command", "x", NULL };
        struct shared_config sc;
        (void) state;

        sc = command_config("a", exit1);
        assert_string_equal(load_error(&sc, -EIO), "shared segment 'a': 'sh -c echo partial; exit 1' exited with status 1");
        sc = command_config("b", killed);
        assert_string_equal(load_error(&sc, -EIO),
                            "shared segment 'b': 'sh -c echo partial; kill -9 $$' was killed by signal KILL");
        sc = command_config("c", empty);
        assert_string_equal(load_error(&sc, -ENODATA), "shared segment 'c': 'true' wrote nothing");
        sc = command_config("d", missing);
        assert_string_equal(load_error(&sc, -ENOENT),
                            "shared segment 'd': cannot run 'corral-no-such-command x': No such file or directory");
}

static void test_over_max_size(void **state) {
        /* `yes` never ends: the limit must stop it, not the end of its output. */
        char *endless[] = { "yes", NULL };
        char *exact[] = { "head", "-c", "4096", "/dev/zero", NULL };
        char *one_more[] = { "head", "-c", "4097", "/dev/zero", NULL };
        struct shared_config sc = command_config("big", endless);
        struct shm_segment *s = NULL;
        struct shm_error err = {};
        (void) state;

        sc.max_size = 1 << 20;
        assert_string_equal(load_error(&sc, -EFBIG),
                            "shared segment 'big': 'yes' wrote more than max_size (1048576 bytes); stopped it");

        sc = command_config("exact", exact);
        sc.max_size = 4096;
        assert_int_equal(shm_segment_load(&sc, 1, &s, &err), 0);
        assert_int_equal(s->size, 4096);
        s = shm_segment_unref(s);
        sc.command = one_more;
        assert_int_equal(shm_segment_load(&sc, 1, &s, &err), -EFBIG);

        sc = file_config("file", tmp_path("big.bin"));
        sc.max_size = 100;
        _cleanup_free_ uint8_t *data = pattern(101, 3);
        write_file(sc.path, data, 101);
        char expected[512];
        snprintf(expected, sizeof(expected), "shared segment 'file': %s is 101 bytes, more than max_size (100)", sc.path);
        assert_string_equal(load_error(&sc, -EFBIG), expected);
        sc.max_size = 101;
        assert_int_equal(shm_segment_load(&sc, 1, &s, &err), 0);
        shm_segment_unref(s);
}

static void test_default_max_size(void **state) {
        uint64_t max = 0;
        (void) state;
        assert_int_equal(shm_default_max_size(&max), 0);
        assert_true(max > 1 << 20);
}

static void test_huge_pages(void **state) {
        _cleanup_free_ uint8_t *data = pattern(100000, 4);
        struct shared_config sc = file_config("huge", tmp_path("huge.bin"));
        struct shm_segment *s = NULL;
        struct shm_error err = {};
        (void) state;

        write_file(sc.path, data, 100000);
        sc.huge = true;
        int r = shm_segment_load(&sc, 1, &s, &err);
        if (r == 0) {
                /* The system has huge pages to give: same bytes, size as loaded. */
                assert_true(s->huge);
                assert_segment_is(s, data, 100000);
                struct stat st;
                assert_int_equal(fstat(s->fd, &st), 0);
                assert_true(st.st_size >= 100000 && st.st_size % (2 << 20) == 0);
                s = shm_segment_unref(s);

                /* From a command, over more than one window of huge pages. */
                size_t size = 5 * (2 << 20) + 1;
                _cleanup_free_ uint8_t *big = pattern(size, 5);
                char *argv[] = { "cat", sc.path, NULL };
                write_file(sc.path, big, size);
                sc = command_config("huge_cmd", argv);
                sc.huge = true;
                r = shm_segment_load(&sc, 1, &s, &err);
                if (r == -ENOMEM)  /* too few pages for this one: still a clear message */
                        assert_non_null(strstr(err.message, "not enough free huge pages"));
                else {
                        assert_int_equal(r, 0);
                        assert_segment_is(s, big, size);
                        shm_segment_unref(s);
                }
                return;
        }
        assert_true(r == -ENOMEM || r == -EOPNOTSUPP || r == -EINVAL);
        assert_non_null(strstr(err.message, "shared segment 'huge': "));
        assert_non_null(strstr(err.message, "huge"));
        print_message("(no huge pages here: %s)\n", err.message);
}

static void test_changed_source(void **state) {
        char *path = tmp_path("changing.bin");
        struct shared_config sc = file_config("c", path);
        struct shm_segment *s = NULL;
        struct shm_error err = {};
        (void) state;

        write_file(path, "version 1", 9);
        assert_int_equal(shm_segment_load(&sc, 1, &s, &err), 0);
        assert_false(shm_segment_changed(s, &sc));

        /* A new mtime, same everything else. */
        struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = 1000000000 } };
        assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
        assert_true(shm_segment_changed(s, &sc));
        s = shm_segment_unref(s);

        assert_int_equal(shm_segment_load(&sc, 1, &s, &err), 0);
        assert_false(shm_segment_changed(s, &sc));
        /* Replaced by rename (a new inode), even with the same size and mtime. */
        char *next = tmp_path("changing.next");
        write_file(next, "version 2", 9);
        assert_int_equal(utimensat(AT_FDCWD, next, times, 0), 0);
        assert_int_equal(rename(next, path), 0);
        assert_true(shm_segment_changed(s, &sc));
        s = shm_segment_unref(s);

        assert_int_equal(shm_segment_load(&sc, 1, &s, &err), 0);
        /* Another path, `huge`, a removed file: all changed. */
        struct shared_config other = sc;
        other.path = tmp_path("other.bin");
        assert_true(shm_segment_changed(s, &other));
        other = sc;
        other.huge = true;
        assert_true(shm_segment_changed(s, &other));
        other = sc;
        other.max_size = 12345;   /* only a limit: nothing to reload */
        assert_false(shm_segment_changed(s, &other));
        assert_int_equal(unlink(path), 0);
        assert_true(shm_segment_changed(s, &sc));
        s = shm_segment_unref(s);

        /* A command's output cannot be compared without running it. */
        char *argv[] = { "printf", "x", NULL };
        sc = command_config("cmd", argv);
        assert_int_equal(shm_segment_load(&sc, 1, &s, &err), 0);
        assert_true(shm_segment_changed(s, &sc));
        shm_segment_unref(s);
}

static bool fd_open(int fd) {
        return fcntl(fd, F_GETFD) >= 0;
}

static void test_set_env_and_generations(void **state) {
        char *a = tmp_path("a.bin"), *b = tmp_path("b.bin");
        char *argv[] = { "printf", "abc", NULL };
        struct shared_config configs[] = {
                file_config("ref_Data1", a), file_config("b", b), command_config("cmd", argv),
        };
        struct shm_set *set = NULL, *next = NULL, *same = NULL;
        struct shm_error err = {};
        char expected[64];
        (void) state;

        write_file(a, "AAAA", 4);
        write_file(b, "BBBBBB", 6);
        assert_int_equal(shm_set_load(configs, 2, &set, &err), 0);
        assert_int_equal(set->generation, 1);
        assert_int_equal(set->n_ref, 1);
        assert_int_equal(set->n_segments, 2);
        assert_int_equal(set->fds[0], set->segments[0]->fd);
        assert_int_equal(set->fds[1], set->segments[1]->fd);
        snprintf(expected, sizeof(expected), "CORRAL_SHM_REF_DATA1=%d", set->fds[0]);
        assert_string_equal(set->env[0], expected);
        assert_string_equal(set->env[1], "CORRAL_SHM_REF_DATA1_SIZE=4");
        snprintf(expected, sizeof(expected), "CORRAL_SHM_B=%d", set->fds[1]);
        assert_string_equal(set->env[2], expected);
        assert_string_equal(set->env[3], "CORRAL_SHM_B_SIZE=6");
        assert_null(set->env[4]);

        /* Nothing changed: the same set, one more reference, workers stay. */
        assert_int_equal(shm_set_reload(set, configs, 2, &same, &err), 0);
        assert_ptr_equal(same, set);
        assert_int_equal(set->n_ref, 2);
        same = shm_set_unref(same);

        /* b changes: generation 2 shares a, loads b anew. */
        struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = 1000000000 } };
        write_file(b, "bb", 2);
        assert_int_equal(utimensat(AT_FDCWD, b, times, 0), 0);
        assert_int_equal(shm_set_reload(set, configs, 2, &next, &err), 1);
        assert_int_equal(next->generation, 2);
        assert_ptr_equal(next->segments[0], set->segments[0]);
        assert_int_equal(next->segments[0]->n_ref, 2);
        assert_int_equal(next->segments[0]->generation, 1);
        assert_ptr_not_equal(next->segments[1], set->segments[1]);
        assert_int_equal(next->segments[1]->generation, 2);
        assert_string_equal(next->env[3], "CORRAL_SHM_B_SIZE=2");

        /* Old workers still run on generation 1: its b is there, unchanged. */
        int old_b = set->fds[1];
        char buf[8] = "";
        assert_int_equal(pread(old_b, buf, sizeof(buf), 0), 6);
        assert_memory_equal(buf, "BBBBBB", 6);
        /* The last of them is gone: b of generation 1 goes, a stays. */
        int a_fd = set->fds[0];
        set = shm_set_unref(set);
        assert_false(fd_open(old_b));
        assert_true(fd_open(a_fd));
        assert_int_equal(next->segments[0]->n_ref, 1);

        /* A failing reload leaves the running set as it was. */
        assert_int_equal(unlink(a), 0);
        assert_int_equal(shm_set_reload(next, configs, 2, &set, &err), -ENOENT);
        assert_null(set);
        assert_non_null(strstr(err.message, "shared segment 'ref_Data1': cannot open"));
        assert_int_equal(next->n_ref, 1);
        assert_true(fd_open(a_fd));

        /* Segments can be added (a command) and removed (a, b). */
        assert_int_equal(shm_set_reload(next, configs + 2, 1, &set, &err), 1);
        assert_int_equal(set->generation, 3);
        assert_int_equal(set->n_segments, 1);
        assert_string_equal(set->env[1], "CORRAL_SHM_CMD_SIZE=3");
        next = shm_set_unref(next);
        assert_false(fd_open(a_fd));
        set = shm_set_unref(set);

        /* No segments at all: an empty, valid set. */
        assert_int_equal(shm_set_load(NULL, 0, &set, &err), 0);
        assert_int_equal(set->n_segments, 0);
        assert_null(set->env[0]);
        shm_set_unref(set);
}

/* A worker inherits exactly the fds it is given, under the same numbers. */
static void test_spawn_keeps_fds(void **state) {
        char *path = tmp_path("spawn.bin");
        struct shared_config sc = file_config("s", path);
        struct shm_segment *s = NULL;
        struct shm_error err = {};
        char fd_text[16], other_text[16];
        int status;
        (void) state;

        write_file(path, "spawned worker data", 19);
        assert_int_equal(shm_segment_load(&sc, 1, &s, &err), 0);
        _cleanup_(closep) int other = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(other >= 0);
        snprintf(fd_text, sizeof(fd_text), "%d", s->fd);
        snprintf(other_text, sizeof(other_text), "%d", other);

        char *argv[] = { "sh", "-c", "cmp -s /proc/self/fd/$0 \"$1\" && ! [ -e /proc/self/fd/$2 ]",
                         fd_text, path, other_text, NULL };
        int keep[] = { s->fd };
        struct spawn_request req = {
                .argv = argv, .envp = environ, .keep_fds = keep, .n_keep_fds = 1,
        };
        pid_t pid = spawn_worker(&req);
        assert_true(pid > 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        /* corral's own copy is still close-on-exec. */
        assert_int_equal(fcntl(s->fd, F_GETFD), FD_CLOEXEC);

        /* Without keep_fds, nothing is inherited. */
        req.n_keep_fds = 0;
        pid = spawn_worker(&req);
        assert_true(pid > 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_not_equal(WEXITSTATUS(status), 0);

        /* A bad fd is the child's error, reported as a failed spawn. */
        int bad[] = { 999 };
        req.keep_fds = bad;
        req.n_keep_fds = 1;
        assert_int_equal(spawn_worker(&req), -EBADF);
        shm_segment_unref(s);
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_load_file_byte_for_byte),
                cmocka_unit_test(test_load_command_byte_for_byte),
                cmocka_unit_test(test_sealed_against_every_write),
                cmocka_unit_test(test_missing_file),
                cmocka_unit_test(test_unreadable_file),
                cmocka_unit_test(test_directory_and_empty_file),
                cmocka_unit_test(test_failing_commands),
                cmocka_unit_test(test_over_max_size),
                cmocka_unit_test(test_default_max_size),
                cmocka_unit_test(test_huge_pages),
                cmocka_unit_test(test_changed_source),
                cmocka_unit_test(test_set_env_and_generations),
                cmocka_unit_test(test_spawn_keeps_fds),
        };
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests(tests, setup, teardown);
}
