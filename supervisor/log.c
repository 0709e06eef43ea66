/* SPDX-License-Identifier: MIT */
/* Log lines on stderr, with journald priority prefixes when stderr is the journal. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor/log.h"

static int log_max_level = LOG_INFO;
static bool log_to_journal;

/* JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected; it is only ours
 * if stderr is still that stream (a child of a service may have redirected it). */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == dev && st.st_ino == ino;
}

void log_setup(int max_level) {
        log_max_level = max_level;
        log_to_journal = stderr_is_journal();
}

int log_full(int level, int error, const char *format, ...) {
        if (error < 0)
                error = -error;
        if (level > log_max_level)
                return -error;

        /* One write per line, so lines of concurrent writers never interleave. */
        char line[2048];
        int n = log_to_journal ? snprintf(line, sizeof(line), "<%d>", level)
                               : snprintf(line, sizeof(line), "corral: ");
        va_list ap;
        errno = error;
        va_start(ap, format);
        int m = vsnprintf(line + n, sizeof(line) - n - 1, format, ap);
        va_end(ap);
        if (m < 0)
                m = 0;
        n += (size_t) m < sizeof(line) - n - 1 ? m : (int) (sizeof(line) - n - 2);
        line[n++] = '\n';
        (void) !write(STDERR_FILENO, line, n);
        return -error;
}
