/* SPDX-License-Identifier: MIT */
/*
 * corral's exit statuses, the contract's (DESIGN.md, "Exit status of run"): every
 * command and every stop of the supervisor names one of these, never a
 * literal number.
 */
#pragma once

enum exit_status {
        EXIT_OK = 0,            /* a clean stop, or every task succeeded */
        EXIT_TASKS_FAILED = 1,  /* some task failed after its retries */
        EXIT_USAGE = 2,         /* a usage or configuration error */
        EXIT_CRASH_LOOP = 3,    /* the pool gave up: the crash-loop limit */
        /* corral could not start, or its event loop failed later, for a
         * reason outside its configuration: out of memory, the event loop,
         * /proc. Not 2: a script told "fix your configuration" would look for
         * a mistake that is not there; not 3: no worker crashed. */
        EXIT_SYSTEM = 4,
};
