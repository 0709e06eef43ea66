/* SPDX-License-Identifier: MIT */
/* read_small_file(): a one-line file whole, a longer one cut at the buffer,
 * an empty one, a missing one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/small_file.h"

/* A temporary file holding text; its path is written to path. */
static void make_file(char path[static 64], const char *text) {
        snprintf(path, 64, "%s/small-file-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        close(fd);
}

static void test_a_line_is_read_whole(void **state) {
        char path[64], buf[64];
        (void) state;
        make_file(path, "max\n");
        assert_int_equal(read_small_file(path, buf, sizeof(buf)), 4);
        assert_string_equal(buf, "max\n");
        unlink(path);
}

static void test_a_longer_file_is_cut_at_the_buffer(void **state) {
        char path[64], buf[4];
        (void) state;
        make_file(path, "123456\n");
        assert_int_equal(read_small_file(path, buf, sizeof(buf)), 3);
        assert_string_equal(buf, "123");
        unlink(path);
}

static void test_an_empty_file_reads_nothing(void **state) {
        char path[64], buf[8] = "x";
        (void) state;
        make_file(path, "");
        assert_int_equal(read_small_file(path, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "");
        unlink(path);
}

static void test_a_missing_file_is_its_errno(void **state) {
        char buf[8];
        (void) state;
        assert_int_equal(read_small_file("/nonexistent/corral/file", buf, sizeof(buf)), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_a_line_is_read_whole),
                cmocka_unit_test(test_a_longer_file_is_cut_at_the_buffer),
                cmocka_unit_test(test_an_empty_file_reads_nothing),
                cmocka_unit_test(test_a_missing_file_is_its_errno),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
