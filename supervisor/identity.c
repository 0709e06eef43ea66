/* SPDX-License-Identifier: MIT */
/* workers.user and workers.group resolved to numbers in corral (see identity.h). */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "supervisor/identity.h"

struct identity_self identity_self(void) {
        return (struct identity_self) { .uid = geteuid(), .gid = getegid() };
}

/* "1000" as an id; -EINVAL for anything but digits, -ERANGE past 2^32-2
 * ((uid_t) -1 means "unchanged" to the kernel). */
static int parse_id(const char *s, unsigned *ret) {
        unsigned long long v = 0;

        if (!*s || strspn(s, "0123456789") != strlen(s))
                return -EINVAL;
        for (; *s; s++) {
                v = v * 10 + (unsigned) (*s - '0');
                if (v >= 0xFFFFFFFFull)
                        return -ERANGE;
        }
        *ret = (unsigned) v;
        return 0;
}

/* The entry of a user named or numbered `key`: 0, -ENOENT, or another -errno.
 * The strings of *ret_pw live in *ret_buf (the caller frees it). */
static int user_lookup(const char *key, struct passwd *ret_pw, char **ret_buf) {
        unsigned id;
        bool numeric = parse_id(key, &id) >= 0;

        for (size_t size = 1024; size <= 1024 * 1024; size *= 4) {
                _cleanup_free_ char *buf = malloc(size);
                struct passwd *found = NULL;
                if (!buf)
                        return -ENOMEM;
                int r = numeric ? getpwuid_r((uid_t) id, ret_pw, buf, size, &found)
                                : getpwnam_r(key, ret_pw, buf, size, &found);
                if (r == ERANGE)
                        continue;
                /* "Not found" comes back as 0, ENOENT, ESRCH, EBADF or EPERM
                 * depending on the NSS module. */
                if (r != 0 && r != ENOENT && r != ESRCH && r != EBADF && r != EPERM)
                        return -r;
                if (!found)
                        return -ENOENT;
                *ret_buf = TAKE_PTR(buf);
                return 0;
        }
        return -ENOBUFS;   /* an entry of over a MiB: something is wrong */
}

/* The gid of a group named or numbered `key` (a number need not have an entry). */
static int group_lookup(const char *key, gid_t *ret) {
        unsigned id;
        int r = parse_id(key, &id);
        if (r != -EINVAL) {
                if (r >= 0)
                        *ret = (gid_t) id;
                return r;
        }
        for (size_t size = 1024; size <= 1024 * 1024; size *= 4) {
                _cleanup_free_ char *buf = malloc(size);
                struct group gr, *found = NULL;
                if (!buf)
                        return -ENOMEM;
                r = getgrnam_r(key, &gr, buf, size, &found);
                if (r == ERANGE)
                        continue;
                if (r != 0 && r != ENOENT && r != ESRCH && r != EBADF && r != EPERM)
                        return -r;
                if (!found)
                        return -ENOENT;
                *ret = gr.gr_gid;
                return 0;
        }
        return -ENOBUFS;   /* an entry of over a MiB: something is wrong */
}

/* The user's groups as initgroups() would set them: gid first, then every
 * group that lists the user as a member. */
static int supplementary_groups(const char *user, gid_t gid, gid_t **ret, size_t *ret_n) {
        int n = 16;
        for (int attempt = 0; attempt < 8; attempt++) {
                _cleanup_free_ gid_t *groups = calloc((size_t) n, sizeof(gid_t));
                if (!groups)
                        return -ENOMEM;
                int have = n;
                if (getgrouplist(user, gid, groups, &have) >= 0) {
                        *ret = TAKE_PTR(groups);
                        *ret_n = (size_t) have;
                        return 0;
                }
                /* Too small: `have` now says how many there are. */
                n = have > n ? have : 2 * n;
        }
        return -ENOBUFS;
}

__attribute__((format(printf, 5, 6)))
static int identity_error(struct conf_diagnostics *diag, const char *path, unsigned line, unsigned column,
                          const char *format, ...) {
        char text[512];
        va_list ap;
        va_start(ap, format);
        vsnprintf(text, sizeof(text), format, ap);
        va_end(ap);
        int r = conf_diagnostics_add(diag, CONF_ERROR, path ? path : "corral", path ? line : 0, column, "%s", text);
        return r < 0 ? r : -EINVAL;
}

/* The user's uid, primary gid (when the database knows the user) and name. */
static int resolve_user(const struct workers_config *w, const char *path, struct conf_diagnostics *diag,
                        uid_t *ret_uid, gid_t *ret_gid, bool *ret_known, char **ret_name) {
        _cleanup_free_ char *buf = NULL;
        struct passwd pw;
        unsigned id;

        if (parse_id(w->user, &id) == -ERANGE)
                return identity_error(diag, path, w->user_line, w->user_column,
                                      "workers.user: %s is out of range for a uid", w->user);
        int r = user_lookup(w->user, &pw, &buf);
        if (r == -ENOMEM)
                return r;
        if (r >= 0) {
                if (!(*ret_name = strdup(pw.pw_name)))
                        return -ENOMEM;
                *ret_uid = pw.pw_uid;
                *ret_gid = pw.pw_gid;
                *ret_known = true;
                return 0;
        }
        if (r == -ENOENT && parse_id(w->user, &id) >= 0) {
                /* A bare uid may have no entry (a container's user, say): then
                 * it has no primary group to default to. */
                if (!w->group)
                        return identity_error(diag, path, w->user_line, w->user_column,
                                              "workers.user: uid %s has no entry in the user database: "
                                              "give workers.group too", w->user);
                *ret_uid = (uid_t) id;
                *ret_known = false;
                return 0;
        }
        if (r == -ENOENT)
                return identity_error(diag, path, w->user_line, w->user_column,
                                      "workers.user: no user '%s' on this machine", w->user);
        return identity_error(diag, path, w->user_line, w->user_column,
                              "workers.user: cannot look up '%s': %s", w->user, strerror(-r));
}

static int resolve_group(const struct workers_config *w, const char *path, struct conf_diagnostics *diag,
                         gid_t *ret) {
        int r = group_lookup(w->group, ret);
        if (r >= 0 || r == -ENOMEM)
                return r;
        if (r == -ENOENT)
                return identity_error(diag, path, w->group_line, w->group_column,
                                      "workers.group: no group '%s' on this machine", w->group);
        if (r == -ERANGE)
                return identity_error(diag, path, w->group_line, w->group_column,
                                      "workers.group: %s is out of range for a gid", w->group);
        return identity_error(diag, path, w->group_line, w->group_column,
                              "workers.group: cannot look up '%s': %s", w->group, strerror(-r));
}

/* Only root may become someone else; asking for one's own ids is no change. */
static int check_privilege(const struct workers_config *w, const char *path, const struct identity_self *self,
                           uid_t uid, gid_t gid, struct conf_diagnostics *diag) {
        if (self->uid == 0)
                return 0;
        if (w->user && uid != self->uid)
                return identity_error(diag, path, w->user_line, w->user_column,
                                      "workers.user: corral runs as uid %u, not root: cannot start workers as '%s'",
                                      (unsigned) self->uid, w->user);
        if (gid == self->gid)
                return 0;
        if (w->group)
                return identity_error(diag, path, w->group_line, w->group_column,
                                      "workers.group: corral runs as uid %u, not root: cannot start workers in "
                                      "group '%s'", (unsigned) self->uid, w->group);
        return identity_error(diag, path, w->user_line, w->user_column,
                              "workers.user: corral runs as uid %u with gid %u, not root: cannot start workers "
                              "in gid %u, the primary group of '%s'", (unsigned) self->uid, (unsigned) self->gid,
                              (unsigned) gid, w->user);
}

int identity_resolve(struct workers_config *w, const char *path, const struct identity_self *self,
                     struct conf_diagnostics *diag) {
        _cleanup_free_ char *name = NULL;
        _cleanup_free_ gid_t *groups = NULL;
        size_t n_groups = 0;
        uid_t uid = 0;
        gid_t gid = 0;
        bool known = false;
        int r, r_group = 0;

        if (!w->user && !w->group) {
                free(w->identity.groups);
                w->identity = (struct worker_identity) {};
                return 0;
        }
        /* Both are looked up, so that one run reports both unknown names. */
        r = w->user ? resolve_user(w, path, diag, &uid, &gid, &known, &name) : 0;
        if (r == -ENOMEM)
                return r;
        if (w->group)
                r_group = resolve_group(w, path, diag, &gid);
        if (r < 0 || r_group < 0)
                return r_group == -ENOMEM ? r_group : -EINVAL;
        if (!self)
                return 0;
        r = check_privilege(w, path, self, uid, gid, diag);
        if (r < 0)
                return r;

        struct worker_identity id = {
                .set_uid = w->user && uid != self->uid,
                .set_gid = gid != self->gid,
                .uid = uid,
                .gid = gid,
        };
        /* A new user gets its own groups, not corral's (root's). */
        if (id.set_uid) {
                if (known)
                        r = supplementary_groups(name, gid, &groups, &n_groups);
                else if ((groups = malloc(sizeof(gid_t)))) {
                        groups[0] = gid;
                        n_groups = 1;
                } else
                        r = -ENOMEM;
                if (r == -ENOBUFS)
                        return identity_error(diag, path, w->user_line, w->user_column,
                                              "workers.user: cannot list the groups of '%s'", w->user);
                if (r < 0)
                        return r;
                id.set_groups = true;
                id.groups = TAKE_PTR(groups);
                id.n_groups = n_groups;
        }
        free(w->identity.groups);
        w->identity = id;
        return 0;
}

bool identity_equal(const struct worker_identity *a, const struct worker_identity *b) {
        if (a->set_uid != b->set_uid || a->set_gid != b->set_gid || a->set_groups != b->set_groups)
                return false;
        if ((a->set_uid && a->uid != b->uid) || (a->set_gid && a->gid != b->gid))
                return false;
        if (a->set_groups && (a->n_groups != b->n_groups ||
                              memcmp(a->groups, b->groups, a->n_groups * sizeof(gid_t)) != 0))
                return false;
        return true;
}

const char *identity_describe(const struct workers_config *w, char *buf, size_t size) {
        const struct worker_identity *id = &w->identity;
        if (!id->set_uid && !id->set_gid)
                snprintf(buf, size, "%s", "");
        else if (w->user && w->group)
                snprintf(buf, size, " as user %s and group %s", w->user, w->group);
        else if (w->user)
                snprintf(buf, size, " as user %s", w->user);
        else
                snprintf(buf, size, " as group %s", w->group);
        return buf;
}
