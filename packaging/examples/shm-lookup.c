/* SPDX-License-Identifier: MIT */
/*
 * An example worker that answers lookups from a table corral shares between
 * all workers (DESIGN.md "What a worker sees"). The table is loaded once, by
 * corral, into a sealed segment; each worker maps it read-only, so 8 workers
 * cost one copy of the table, not 8.
 *
 * The table: records of two little-endian uint64 (key, value), sorted by key.
 * As a stream-mode worker it reads one key per line on stdin and writes one
 * line per key: "KEY VALUE", or "KEY -" when the key is not in the table.
 *
 *   shm-lookup [NAME]          serve lookups from segment NAME (default TABLE)
 *   shm-lookup --make-table N  write a table of N records to stdout
 *                              (key 3*i, value i*i): a `shared: command:` source
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct record {
        uint64_t key, value;   /* little-endian */
};

static int make_table(unsigned long long n) {
        for (unsigned long long i = 0; i < n; i++) {
                struct record r = { htole64(3 * i), htole64(i * i) };
                if (fwrite(&r, sizeof(r), 1, stdout) != 1)
                        return 1;
        }
        return fflush(stdout) == 0 ? 0 : 1;
}

/* The segment's fd and size, as corral passes them in the environment. */
static const struct record *map_segment(const char *name, size_t *ret_n) {
        char var[128];
        snprintf(var, sizeof(var), "CORRAL_SHM_%s", name);
        const char *fd_text = getenv(var);
        strncat(var, "_SIZE", sizeof(var) - strlen(var) - 1);
        const char *size_text = getenv(var);
        if (!fd_text || !size_text) {
                fprintf(stderr, "shm-lookup: CORRAL_SHM_%s is not set: run me under corral with a shared segment %s\n",
                        name, name);
                return NULL;
        }
        size_t size = strtoull(size_text, NULL, 10);
        /* PROT_READ and MAP_SHARED: the one physical copy, read-only (it is sealed). */
        void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, atoi(fd_text), 0);
        if (p == MAP_FAILED) {
                fprintf(stderr, "shm-lookup: cannot map segment %s: %s\n", name, strerror(errno));
                return NULL;
        }
        *ret_n = size / sizeof(struct record);
        return p;
}

static const struct record *lookup(const struct record *t, size_t n, uint64_t key) {
        size_t lo = 0, hi = n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                uint64_t k = le64toh(t[mid].key);
                if (k == key)
                        return &t[mid];
                if (k < key)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

int main(int argc, char **argv) {
        char line[256];
        size_t n;

        if (argc == 3 && strcmp(argv[1], "--make-table") == 0)
                return make_table(strtoull(argv[2], NULL, 10));
        const struct record *t = map_segment(argc > 1 ? argv[1] : "TABLE", &n);
        if (!t)
                return 2;

        while (fgets(line, sizeof(line), stdin)) {
                line[strcspn(line, "\n")] = '\0';
                char *end;
                uint64_t key = strtoull(line, &end, 10);
                const struct record *r = end != line ? lookup(t, n, key) : NULL;
                if (r)
                        printf("%s %" PRIu64 "\n", line, le64toh(r->value));
                else
                        printf("%s -\n", line);
                fflush(stdout);   /* stream mode: one line out per line in, at once */
        }
        return 0;
}
