/* SPDX-License-Identifier: MIT */
/*
 * A minimal worker for test_shm_pss: maps the segment named by argv[1] the
 * way DESIGN.md tells workers to (CORRAL_SHM_<NAME>, _SIZE), reads every byte
 * (so every page is in its page table), reports the checksum on the fd in
 * argv[2], and holds the mapping until the fd in argv[3] reaches end of file.
 * Kept free of libraries so that its own memory is a rounding error next to
 * the segment's.
 *
 * Usage: shm-touch NAME READY_FD HOLD_FD
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
        char var[128], line[32];
        if (argc != 4)
                return 2;
        snprintf(var, sizeof(var), "CORRAL_SHM_%s", argv[1]);
        const char *fd_text = getenv(var);
        strncat(var, "_SIZE", sizeof(var) - strlen(var) - 1);
        const char *size_text = getenv(var);
        if (!fd_text || !size_text)
                return 3;
        int fd = atoi(fd_text), ready = atoi(argv[2]), hold = atoi(argv[3]);
        size_t size = strtoull(size_text, NULL, 10);

        const uint64_t *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return 4;
        /* FNV-1a over 64-bit words: every byte counts, and every page is read. */
        uint64_t h = 1469598103934665603ULL;
        for (size_t i = 0; i < size / 8; i++)
                h = (h ^ p[i]) * 1099511628211ULL;

        int n = snprintf(line, sizeof(line), "%016llx\n", (unsigned long long) h);
        if (write(ready, line, (size_t) n) != n)   /* 17 bytes: atomic on a pipe */
                return 5;
        char c;
        while (read(hold, &c, 1) > 0)
                ;
        return 0;
}
