/* SPDX-License-Identifier: MIT */
/*
 * The listening sockets of a server pool (`listen:`): bound by corral once,
 * before any worker starts, or taken from corral's own socket activation
 * (LISTEN_FDS), and handed to every worker as fds 3.. with LISTEN_FDS,
 * LISTEN_PID and LISTEN_FDNAMES, as sd_listen_fds(3) expects. They live as
 * long as corral: reloads and worker replacements never close them, so no
 * connection is refused while workers come and go.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "conf/config.h"
#include "supervisor/spawn.h"

/* The most sockets a pool listens on: a spawn places them on its own stack. */
#define LISTEN_MAX SPAWN_LISTEN_MAX

struct listen_socket {
        int fd;                  /* close-on-exec in corral */
        int family;              /* AF_INET, AF_INET6, AF_UNIX, ...: how its backlog is read */
        char *name;              /* its LISTEN_FDNAMES entry */
        char *address;           /* as configured, or "fd N" when activated; for logs */
        char *unlink_path;       /* a unix socket corral created: removed when corral ends */
};

struct listen_set {
        struct listen_socket *sockets;
        size_t n;
        bool activated;          /* from corral's own LISTEN_FDS */
        char *fds_env;           /* "LISTEN_FDS=N" */
        char *names_env;         /* "LISTEN_FDNAMES=a:b" */
        int *fds;                /* the sockets' fds in order, for the spawn */
};

struct listen_error {
        char message[512];
};

/*
 * The sockets of c->listen, or those of corral's socket activation when it
 * has any (then `listen:` is not bound). *ret is NULL when there are none.
 * Returns 0, or a negative errno with a line naming the address, its place in
 * the file and the cause in *error (nothing is left open then).
 */
int listen_set_open(const struct corral_config *c, struct listen_set **ret, struct listen_error *error);

/* Closes the sockets, removes the unix sockets corral created, frees. Accepts NULL. */
struct listen_set *listen_set_free(struct listen_set *s);

static inline void listen_set_freep(struct listen_set **s) {
        listen_set_free(*s);
}

/* Whether the addresses of `listen:` differ between a and b (a reload: they
 * take effect when corral restarts). */
bool listen_config_changed(const struct corral_config *a, const struct corral_config *b);
