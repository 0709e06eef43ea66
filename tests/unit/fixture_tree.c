/* SPDX-License-Identifier: MIT */
/* Fixture trees for the sampler's tests (see fixture_tree.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/unit/fixture_tree.h"

/* nftw() takes no user data: the copy in progress. */
static char copy_src[PATH_MAX], copy_dst[PATH_MAX];

const char *fixture_dir(void) {
        const char *d = getenv("SAMPLER_FIXTURES");
        assert_non_null(d);     /* set by tests/meson.build */
        return d;
}

void fixture_scratch(char *buf, size_t size) {
        assert_true(snprintf(buf, size, "/tmp/corral-fixture-XXXXXX") < (int) size);
        assert_non_null(mkdtemp(buf));
}

static void write_all(const char *path, const char *data, size_t n) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_true(write(fd, data, n) == (ssize_t) n);
        close(fd);
}

static int copy_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        char dst[PATH_MAX * 2];
        (void) st;
        (void) ftw;

        snprintf(dst, sizeof(dst), "%s%s", copy_dst, path + strlen(copy_src));
        if (type == FTW_D) {
                assert_true(mkdir(dst, 0755) == 0 || errno == EEXIST);
                return 0;
        }
        assert_int_equal(type, FTW_F);
        FILE *f = fopen(path, "re");
        assert_non_null(f);
        char buf[65536];
        size_t n = fread(buf, 1, sizeof(buf), f);
        assert_true(feof(f));   /* every fixture file fits */
        fclose(f);
        write_all(dst, buf, n);
        return 0;
}

void fixture_load(const char *dest, const char *name, const char *instant) {
        snprintf(copy_src, sizeof(copy_src), "%s/%s/%s", fixture_dir(), name, instant);
        snprintf(copy_dst, sizeof(copy_dst), "%s", dest);
        assert_int_equal(nftw(copy_src, copy_one, 16, FTW_PHYS), 0);
}

void fixture_put(const char *dest, const char *path, const char *text) {
        char full[PATH_MAX * 2];
        snprintf(full, sizeof(full), "%s%s", dest, path);
        assert_int_equal(access(full, F_OK), 0);
        write_all(full, text, strlen(text));
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void) st;
        (void) type;
        (void) ftw;
        return remove(path);
}

void fixture_remove(const char *dest) {
        assert_int_equal(nftw(dest, remove_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}
