/* SPDX-License-Identifier: MIT */
/*
 * Who the workers run as: workers.user and workers.group turned into numbers
 * (uid, gid, supplementary groups) by corral itself, at start and on every
 * reload. The spawned child shares corral's memory until it execs and may only
 * make system calls, so the user database is read here, never there.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conf/conf.h"

/* The ids corral runs with: only root may start workers as someone else. */
struct identity_self {
        uid_t uid;
        gid_t gid;
};

/* geteuid() and getegid(). Cannot fail. */
struct identity_self identity_self(void);

/*
 * Looks up w->user and w->group (names or numbers) and fills w->identity with
 * what a spawn must change to become them: nothing when they are corral's own
 * ids. `group` defaults to the user's primary group; a group without a user
 * changes the group only. With self NULL only the names are checked (`corral
 * check`: the file may be meant for a root service). An unknown name, or
 * another user or group than self's when self is not root, is an error added
 * to diag as "PATH:LINE:COL: workers.user: ..." (path may be NULL when the
 * keys did not come from a file). Returns 0, -EINVAL (diag says why) or
 * -ENOMEM; w->identity is written only on success.
 */
int identity_resolve(struct workers_config *w, const char *path, const struct identity_self *self,
                     struct conf_diagnostics *diag);

/* Whether two resolved identities start the same processes. */
bool identity_equal(const struct worker_identity *a, const struct worker_identity *b);

/* For "cannot run 'X'%s": " as user nobody", " as user nobody and group web",
 * " as group web", or "" when the workers run as corral. Returns buf. */
const char *identity_describe(const struct workers_config *w, char *buf, size_t size);
