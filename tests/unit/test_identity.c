/* SPDX-License-Identifier: MIT */
/* workers.user/group into ids: what a spawn changes, and the reason given for what is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <cmocka.h>

#include "supervisor/identity.h"

static const struct identity_self root = { 0, 0 };

/* The test's own view of "nobody", from the same database. */
static struct passwd nobody;

static int setup(void **state) {
        (void) state;
        struct passwd *pw = getpwnam("nobody");
        if (!pw)
                return -1;
        nobody = *pw;
        return 0;
}

/* A workers config as the loader leaves it: user on line 3, group on line 4. */
static struct workers_config workers(const char *user, const char *group) {
        return (struct workers_config) {
                .user = (char *) user, .group = (char *) group,
                .user_line = user ? 3 : 0, .user_column = 9,
                .group_line = group ? 4 : 0, .group_column = 10,
        };
}

static bool has_group(const struct worker_identity *id, gid_t gid) {
        for (size_t i = 0; i < id->n_groups; i++)
                if (id->groups[i] == gid)
                        return true;
        return false;
}

static void test_nothing_set_changes_nothing(void **state) {
        struct conf_diagnostics diag = {};
        struct workers_config w = workers(NULL, NULL);
        (void) state;

        assert_int_equal(identity_resolve(&w, "f.yaml", &root, &diag), 0);
        assert_false(w.identity.set_uid || w.identity.set_gid || w.identity.set_groups);
        assert_int_equal(diag.n_items, 0);
}

static void test_a_user_by_name_or_number_takes_its_primary_group(void **state) {
        char number[16];
        (void) state;
        snprintf(number, sizeof(number), "%u", (unsigned) nobody.pw_uid);

        const char *keys[] = { "nobody", number };
        for (size_t i = 0; i < 2; i++) {
                struct conf_diagnostics diag = {};
                struct workers_config w = workers(keys[i], NULL);
                assert_int_equal(identity_resolve(&w, "f.yaml", &root, &diag), 0);
                assert_true(w.identity.set_uid && w.identity.set_gid && w.identity.set_groups);
                assert_int_equal(w.identity.uid, nobody.pw_uid);
                assert_int_equal(w.identity.gid, nobody.pw_gid);
                assert_true(has_group(&w.identity, nobody.pw_gid));
                assert_false(has_group(&w.identity, 0));   /* root's groups are not kept */
                free(w.identity.groups);
        }
}

static void test_a_group_overrides_the_primary_one(void **state) {
        struct conf_diagnostics diag = {};
        struct workers_config w = workers("nobody", "0");
        (void) state;

        assert_int_equal(identity_resolve(&w, "f.yaml", &root, &diag), 0);
        assert_int_equal(w.identity.uid, nobody.pw_uid);
        assert_int_equal(w.identity.gid, 0);
        assert_true(has_group(&w.identity, 0));
        free(w.identity.groups);
}

static void test_a_group_alone_changes_only_the_group(void **state) {
        struct conf_diagnostics diag = {};
        struct workers_config w = workers(NULL, "4242");
        (void) state;

        assert_int_equal(identity_resolve(&w, "f.yaml", &root, &diag), 0);
        assert_false(w.identity.set_uid);
        assert_false(w.identity.set_groups);
        assert_true(w.identity.set_gid);
        assert_int_equal(w.identity.gid, 4242);
}

static void test_a_bare_uid_needs_a_group(void **state) {
        struct conf_diagnostics diag = {};
        struct workers_config w = workers("4000000", NULL);
        (void) state;

        assert_int_equal(identity_resolve(&w, "f.yaml", &root, &diag), -EINVAL);
        assert_int_equal(diag.n_errors, 1);
        assert_string_equal(diag.items[0].message,
                            "f.yaml:3:9: workers.user: uid 4000000 has no entry in the user database: "
                            "give workers.group too");
        conf_diagnostics_done(&diag);

        w = workers("4000000", "4000001");
        assert_int_equal(identity_resolve(&w, "f.yaml", &root, &diag), 0);
        assert_int_equal(w.identity.uid, 4000000);
        assert_int_equal(w.identity.gid, 4000001);
        assert_int_equal(w.identity.n_groups, 1);
        assert_int_equal(w.identity.groups[0], 4000001);
        free(w.identity.groups);
}

static void test_being_oneself_is_no_change(void **state) {
        struct conf_diagnostics diag = {};
        struct identity_self self = { nobody.pw_uid, nobody.pw_gid };
        (void) state;

        struct workers_config w = workers("nobody", NULL);
        assert_int_equal(identity_resolve(&w, "f.yaml", &self, &diag), 0);
        assert_false(w.identity.set_uid || w.identity.set_gid || w.identity.set_groups);

        w = workers("root", NULL);
        assert_int_equal(identity_resolve(&w, "f.yaml", &root, &diag), 0);
        assert_false(w.identity.set_uid || w.identity.set_gid || w.identity.set_groups);
        assert_int_equal(diag.n_items, 0);
}

static void test_refusals_name_the_key_and_place(void **state) {
        static const struct identity_self user = { 1000, 1000 };
        const struct {
                const char *user, *group;
                const struct identity_self *self;
                const char *message;
        } cases[] = {
                { "no-such-user-here", NULL, &root,
                  "f.yaml:3:9: workers.user: no user 'no-such-user-here' on this machine" },
                { NULL, "no-such-group-here", &root,
                  "f.yaml:4:10: workers.group: no group 'no-such-group-here' on this machine" },
                { "4294967295", NULL, &root, "f.yaml:3:9: workers.user: 4294967295 is out of range for a uid" },
                { NULL, "99999999999", &root, "f.yaml:4:10: workers.group: 99999999999 is out of range for a gid" },
                { "nobody", NULL, &user,
                  "f.yaml:3:9: workers.user: corral runs as uid 1000, not root: cannot start workers as 'nobody'" },
                { NULL, "0", &user,
                  "f.yaml:4:10: workers.group: corral runs as uid 1000, not root: cannot start workers in group '0'" },
                /* Checking only: the names must exist, whoever checks. */
                { "no-such-user-here", NULL, NULL,
                  "f.yaml:3:9: workers.user: no user 'no-such-user-here' on this machine" },
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct conf_diagnostics diag = {};
                struct workers_config w = workers(cases[i].user, cases[i].group);
                print_message("case %zu: %s\n", i, cases[i].message);
                assert_int_equal(identity_resolve(&w, "f.yaml", cases[i].self, &diag), -EINVAL);
                assert_int_equal(diag.n_errors, 1);
                assert_string_equal(diag.items[0].message, cases[i].message);
                assert_false(w.identity.set_uid || w.identity.set_gid);
                conf_diagnostics_done(&diag);
        }
}

static void test_both_unknown_names_are_reported(void **state) {
        struct conf_diagnostics diag = {};
        struct workers_config w = workers("no-such-user-here", "no-such-group-here");
        (void) state;

        assert_int_equal(identity_resolve(&w, "f.yaml", &root, &diag), -EINVAL);
        assert_int_equal(diag.n_errors, 2);
        conf_diagnostics_done(&diag);
}

static void test_equal_and_describe(void **state) {
        struct conf_diagnostics diag = {};
        struct workers_config a = workers("nobody", NULL), b = workers("nobody", "0"), g = workers(NULL, "4242");
        char buf[128];
        (void) state;

        assert_int_equal(identity_resolve(&a, "f.yaml", &root, &diag), 0);
        assert_int_equal(identity_resolve(&b, "f.yaml", &root, &diag), 0);
        assert_int_equal(identity_resolve(&g, "f.yaml", &root, &diag), 0);
        assert_true(identity_equal(&a.identity, &a.identity));
        assert_false(identity_equal(&a.identity, &b.identity));
        assert_false(identity_equal(&a.identity, &(struct worker_identity) {}));
        assert_string_equal(identity_describe(&a, buf, sizeof(buf)), " as user nobody");
        assert_string_equal(identity_describe(&b, buf, sizeof(buf)), " as user nobody and group 0");
        assert_string_equal(identity_describe(&g, buf, sizeof(buf)), " as group 4242");
        struct workers_config none = workers(NULL, NULL);
        assert_string_equal(identity_describe(&none, buf, sizeof(buf)), "");
        free(a.identity.groups);
        free(b.identity.groups);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_nothing_set_changes_nothing),
                cmocka_unit_test(test_a_user_by_name_or_number_takes_its_primary_group),
                cmocka_unit_test(test_a_group_overrides_the_primary_one),
                cmocka_unit_test(test_a_group_alone_changes_only_the_group),
                cmocka_unit_test(test_a_bare_uid_needs_a_group),
                cmocka_unit_test(test_being_oneself_is_no_change),
                cmocka_unit_test(test_refusals_name_the_key_and_place),
                cmocka_unit_test(test_both_unknown_names_are_reported),
                cmocka_unit_test(test_equal_and_describe),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
