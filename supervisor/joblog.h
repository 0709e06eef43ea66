/* SPDX-License-Identifier: MIT */
/*
 * The joblog of GNU parallel's --joblog: a header, then one tab-separated line
 * per task attempt (Seq Host Starttime JobRuntime Send Receive Exitval Signal
 * Command), and what --resume and --resume-failed read back from it. The
 * format and the reading are pure; joblog_read() only opens and reads the
 * file. GNU parallel writes a line per job; corral writes one per attempt, so
 * a task with retries shows each try.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "supervisor/task.h"

#define JOBLOG_HEADER "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand"

struct joblog_entry {
        uint64_t seq;            /* 1-based input line number */
        double start;            /* seconds since the Unix epoch */
        double runtime;          /* seconds */
        uint64_t send, receive;  /* bytes to the task's stdin (0) and from its stdout */
        int exitval;             /* exit status; 0 when killed by a signal (as GNU parallel) */
        int signal;              /* the signal that killed it, 0 if none */
        const char *command;     /* as a shell would read it; NUL-terminated */
};

/* A succeeded attempt: exit 0 and no signal. */
static inline bool joblog_entry_ok(const struct joblog_entry *e) {
        return e->exitval == 0 && e->signal == 0;
}

/* Appends the header line (with '\n'). Returns 0 or -ENOMEM. */
int joblog_format_header(struct strbuf *b);
/* Appends one entry's line (with '\n'), as GNU parallel formats it. Returns 0 or -ENOMEM. */
int joblog_format(struct strbuf *b, const struct joblog_entry *e);

/* Parses one line (without '\n'; it is modified in place). Returns 0, or
 * -EINVAL with the reason in `error`. e->command points into line. */
int joblog_parse_line(char *line, struct joblog_entry *ret, char *error, size_t error_size);

/* What the joblog says about each Seq: attempts that failed, and whether one
 * succeeded. An open-addressing hash: joblogs have as many Seqs as tasks. */
struct joblog_state {
        struct joblog_seq {
                uint64_t seq;    /* 0: empty */
                uint32_t failed;
                bool ok;
        } *table;
        size_t cap, n;
};

/* Records one attempt. Returns 0 or -ENOMEM. */
int joblog_state_add(struct joblog_state *s, const struct joblog_entry *e);

/*
 * Whether a task is done already, as GNU parallel's --resume (resume_failed
 * false: skip every Seq that succeeded or ran out of its retries+1 attempts)
 * and --resume-failed (true: skip only the Seqs that succeeded) mean it.
 */
bool joblog_state_done(const struct joblog_state *s, uint64_t seq, bool resume_failed, unsigned retries);

void joblog_state_free(struct joblog_state *s);

/*
 * Opens the joblog at path for writing lines: created if missing, emptied
 * unless `append` (--resume appends, as GNU parallel). A symbolic link is
 * refused. Returns the fd (O_APPEND, O_CLOEXEC), or a negative errno with
 * the message in error (-ELOOP: path is a symbolic link).
 */
int joblog_open(const char *path, bool append, char *error, size_t error_size);

/*
 * Reads the joblog at path into *ret (zeroed beforehand). A missing file is an
 * empty joblog (nothing ran yet); a symbolic link is refused (-ELOOP). Returns 0; -EINVAL for a joblog that does
 * not parse, with "PATH:LINE: reason" in error; another negative errno when
 * it cannot be read, with "PATH: reason" in error.
 */
int joblog_read(const char *path, struct joblog_state *ret, char *error, size_t error_size);
