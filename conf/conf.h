/* SPDX-License-Identifier: MIT */
/*
 * Loading a configuration file (DESIGN.md "Configuration") into struct
 * corral_config, validated, and the built-in default policy. conf/ neither
 * logs nor prints: problems are collected as ready-to-print lines in a
 * struct conf_diagnostics, and the caller prints them.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "conf/config.h"

enum conf_severity {
        CONF_ERROR,
        CONF_WARNING,
        _CONF_SEVERITY_MAX,
};

struct conf_diagnostic {
        enum conf_severity severity;
        unsigned line, column;  /* 1-based; 0 when the problem is the file as a whole */
        char *message;          /* the whole line to print: "FILE:LINE:COL: text"
                                 * (errors) or "FILE:LINE:COL: warning: text" */
};

struct conf_diagnostics {
        struct conf_diagnostic *items;  /* in file order of discovery */
        size_t n_items;
        size_t n_errors, n_warnings;
};

/* After this many errors a file stops being examined (a 10 MB file of junk
 * must not produce 10 MB of messages). */
#define CONF_MAX_ERRORS 50

/* Adds one diagnostic (the message is formatted and copied). For the loader
 * and for callers that add their own findings, e.g. `corral check` warning
 * about a signal the machine lacks. A NULL path makes a message about the
 * command line: the text alone. Returns 0 or -ENOMEM. */
int conf_diagnostics_add(struct conf_diagnostics *d, enum conf_severity severity, const char *path,
                         unsigned line, unsigned column, const char *format, ...)
        __attribute__((format(printf, 6, 7)));

/* conf_diagnostics_add() with a va_list. */
int conf_diagnostics_addv(struct conf_diagnostics *d, enum conf_severity severity, const char *path,
                          unsigned line, unsigned column, const char *format, va_list ap)
        __attribute__((format(printf, 6, 0)));

/* Frees every diagnostic and leaves d empty (zeroed). Accepts a zeroed d. */
void conf_diagnostics_done(struct conf_diagnostics *d);

/*
 * Reads and validates the YAML file at path. On success returns 0 and fills
 * *ret (which must not hold anything: it is overwritten, so the caller keeps
 * its old config until it has a new one — that is what a reload needs); the
 * caller frees it with config_done(). workers.max and workers.initial stay 0
 * when the file leaves them out (resolved later from the CPUs and min).
 *
 * On failure returns -EINVAL when the file has errors (all of them are in
 * diag, each as "FILE:LINE:COL: message"), -ENOENT/-EISDIR/-EACCES/-EFBIG/...
 * when it cannot be read at all (one message in diag), or -ENOMEM; *ret is
 * untouched. Warnings may be added to diag in either case. diag must be zeroed
 * or hold earlier findings; it is appended to.
 */
int conf_load(const char *path, struct corral_config *ret, struct conf_diagnostics *diag);

/*
 * conf_load() on size bytes of text already in memory (which need not end in
 * a NUL), named path in every diagnostic. Same results and ownership as
 * conf_load(), without the errors of reading a file; -EFBIG when size is over
 * CONF_MAX_FILE_SIZE. For the fuzzer and for callers that hold the text.
 */
int conf_load_text(const char *path, const void *text, size_t size, struct corral_config *ret,
                   struct conf_diagnostics *diag);

/* The largest file conf_load reads. */
#define CONF_MAX_FILE_SIZE (1024 * 1024)

/* The deepest nesting of lists and mappings conf_load accepts (corral's own
 * keys nest 5 deep); deeper is "FILE:LINE:COL: nested too deeply". */
#define CONF_MAX_DEPTH 64

/*
 * The rules that relate values to each other (workers.min <= initial <= max,
 * the restart backoff, policy.optimize or policy.target, tasks.output against
 * tasks.mode and tasks.keep_order, --resume needs a joblog, a batch's flags
 * need tasks), over c as it
 * will run: conf_load() applies them to the file alone, and `corral run`
 * again once its flags apply. c->origin says where each value came from:
 * an error points at the value in the file as "PATH:LINE:COL: ..." (the
 * later of two), or names the flags (then without PATH). partial: c holds
 * flags over the defaults while a file is still to be read, so a value
 * missing now may come from it (the joblog --resume needs, tasks.from); its absence is
 * not an error yet. Appends to diag; returns 0, -EINVAL when it found an
 * error, or -ENOMEM.
 */
int conf_validate(const struct corral_config *c, const char *path, bool partial, struct conf_diagnostics *diag);

/*
 * Warnings over c as it will run (after its flags): a rule or policy.target
 * reading a task signal (tasks.*) in a pool without tasks, where the signal
 * is unavailable and the rule never fires. Appends CONF_WARNING items at the
 * rule's `when:` to diag; returns 0 or -ENOMEM.
 */
int conf_lint(const struct corral_config *c, const char *path, struct conf_diagnostics *diag);

/*
 * Fills c's policy with the built-in default of DESIGN.md, replacing its rules,
 * target and optimize: long-lived (batch false) adds a worker on
 * `pool.cpu > 80% and cpu.busy < 80%` for 2s and gives one back on
 * `cpu.busy > 95% and psi.cpu > 20%` for 5s or `pool.cpu < 20%` for 30s;
 * batch seeks throughput (`optimize: {signal: tasks.rate}`) with the same
 * neighbour rule. Sets workers.min to 1 and leaves workers.max 0, for the
 * caller to resolve (usable CPUs, 4x that in batch mode). Returns 0 or -ENOMEM
 * (c's policy is then empty but valid).
 */
int config_default_policy(struct corral_config *c, bool batch);

/*
 * The server pool's policy, for a file with `listen:` and no policy of its
 * own (no rules, target or optimize): grow by half while more than 4
 * connections wait in the accept queue, by one while any wait (1s each),
 * shrink when none wait and the workers are idle (30s), and the neighbour
 * rule. Leaves a policy the file
 * gives as it is. Returns 0 or -ENOMEM (c's rules are then empty).
 */
int config_default_listen_policy(struct corral_config *c);
