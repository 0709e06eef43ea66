/* SPDX-License-Identifier: MIT */
/*
 * `corral status`: asks a running corral for its /status JSON (libcurl) and
 * prints it as a table, or passes the JSON through with --json.
 */
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "common/util.h"
#include "policy/signals.h"
#include "supervisor/commands.h"

#define STATUS_DEFAULT_URL "http://127.0.0.1:9311"
#define STATUS_TIMEOUT_MS 5000L
#define STATUS_MAX_BYTES (16u << 20)

static const char help[] =
        "Usage: corral status [--url URL] [--json]\n"
        "\n"
        "Ask a running corral what it is doing: its pool, workers, signals, rules and\n"
        "last decision, read from URL/status.\n"
        "\n"
        "  --url URL   the corral's metrics address (default " STATUS_DEFAULT_URL ")\n"
        "  --json      print the JSON answer unchanged\n"
        "  -h, --help  show this help\n"
        "\n"
        "Exit status: 0 ok; 2 usage error, corral unreachable, or not a corral answer.\n";

/* libcurl is opened only by `corral status`. Linked into the binary, it would
 * map libcurl, libssl, libcrypto and their kin (about 5 MiB of resident
 * memory) into every long-running supervisor, none of which ever uses them. */
static struct {
        void *handle;
        CURLcode (*global_init)(long flags);
        void (*global_cleanup)(void);
        CURL *(*easy_init)(void);
        CURLcode (*easy_setopt)(CURL *c, CURLoption option, ...);
        CURLcode (*easy_perform)(CURL *c);
        CURLcode (*easy_getinfo)(CURL *c, CURLINFO info, ...);
        void (*easy_cleanup)(CURL *c);
        const char *(*easy_strerror)(CURLcode code);
} curl;

static int curl_open(void) {
        static const struct {
                const char *name;
                size_t offset;
        } symbols[] = {
                { "curl_global_init",    offsetof(__typeof__(curl), global_init) },
                { "curl_global_cleanup", offsetof(__typeof__(curl), global_cleanup) },
                { "curl_easy_init",      offsetof(__typeof__(curl), easy_init) },
                { "curl_easy_setopt",    offsetof(__typeof__(curl), easy_setopt) },
                { "curl_easy_perform",   offsetof(__typeof__(curl), easy_perform) },
                { "curl_easy_getinfo",   offsetof(__typeof__(curl), easy_getinfo) },
                { "curl_easy_cleanup",   offsetof(__typeof__(curl), easy_cleanup) },
                { "curl_easy_strerror",  offsetof(__typeof__(curl), easy_strerror) },
        };

        curl.handle = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
        if (!curl.handle) {
                fprintf(stderr, "corral status: cannot load libcurl: %s\n", dlerror());
                return -ENOENT;
        }
        for (size_t i = 0; i < ELEMENTSOF(symbols); i++) {
                void *f = dlsym(curl.handle, symbols[i].name);
                if (!f) {
                        fprintf(stderr, "corral status: libcurl lacks %s\n", symbols[i].name);
                        return -ENOENT;
                }
                memcpy((char *) &curl + symbols[i].offset, &f, sizeof(f));
        }
        return 0;
}

struct buffer {
        char *data;
        size_t len;
        bool too_big;
};

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata) {
        struct buffer *b = userdata;
        size_t n = size * nmemb;

        if (b->len + n > STATUS_MAX_BYTES) {
                b->too_big = true;
                return 0;        /* makes curl fail with CURLE_WRITE_ERROR */
        }
        char *d = realloc(b->data, b->len + n + 1);
        if (!d)
                return 0;
        memcpy(d + b->len, ptr, n);
        b->data = d;
        b->len += n;
        b->data[b->len] = 0;
        return n;
}

static void curl_easy_cleanupp(CURL **c) {
        if (*c)
                curl.easy_cleanup(*c);
}

/* GETs url into *ret (NUL-terminated); prints the reason and returns -EIO on failure. */
static int fetch(const char *url, char **ret, size_t *ret_len) {
        _cleanup_(curl_easy_cleanupp) CURL *c = curl.easy_init();
        char error[CURL_ERROR_SIZE] = "";
        struct buffer b = {};
        long code = 0;

        if (!c) {
                fprintf(stderr, "corral status: cannot initialise libcurl\n");
                return -ENOMEM;
        }
        curl.easy_setopt(c, CURLOPT_URL, url);
        curl.easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl.easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl.easy_setopt(c, CURLOPT_ERRORBUFFER, error);
        curl.easy_setopt(c, CURLOPT_TIMEOUT_MS, STATUS_TIMEOUT_MS);
        curl.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl.easy_setopt(c, CURLOPT_USERAGENT, "corral/" CORRAL_VERSION);

        CURLcode cr = curl.easy_perform(c);
        if (cr != CURLE_OK) {
                fprintf(stderr, "corral status: cannot reach %s: %s\n", url,
                        b.too_big ? "answer too large" : (*error ? error : curl.easy_strerror(cr)));
                free(b.data);
                return -EIO;
        }
        curl.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        if (code != 200) {
                fprintf(stderr, "corral status: %s answered HTTP %ld\n", url, code);
                free(b.data);
                return -EIO;
        }
        *ret = b.data ? b.data : strdup("");
        *ret_len = b.len;
        return *ret ? 0 : -ENOMEM;
}

/* The answer comes from the network: every value is checked for its type
 * before use (json-c asserts on, e.g., the length of a non-array), and a value
 * of another type reads as missing. */
static json_object *get(json_object *o, const char *key) {
        json_object *v = NULL;
        return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static json_object *get_typed(json_object *o, const char *key, json_type type) {
        json_object *v = get(o, key);
        return v && json_object_is_type(v, type) ? v : NULL;
}

static bool is_number(json_object *v) {
        return v && (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int));
}

static double num(json_object *o, const char *key) {
        json_object *v = get(o, key);
        return is_number(v) ? json_object_get_double(v) : NAN;
}

static const char *str(json_object *o, const char *key, const char *fallback) {
        json_object *v = get(o, key);
        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : fallback;
}

/* 1536 -> "1.5K"; binary units, as ps and top print memory. */
static const char *format_bytes(double bytes, char buf[static 16]) {
        static const char units[] = "BKMGTP";
        size_t u = 0;

        if (isnan(bytes))
                return "-";
        while (bytes >= 1024 && u < sizeof(units) - 2) {
                bytes /= 1024;
                u++;
        }
        snprintf(buf, 16, u == 0 ? "%.0f%c" : "%.1f%c", bytes, units[u]);
        return buf;
}

static const char *format_seconds(double s, char buf[static 16]) {
        if (isnan(s))
                return "-";
        if (s < 60)
                snprintf(buf, 16, "%.1fs", s);
        else if (s < 3600)
                snprintf(buf, 16, "%dm%02ds", (int) (s / 60), (int) fmod(s, 60));
        else
                snprintf(buf, 16, "%dh%02dm", (int) (s / 3600), (int) fmod(s / 60, 60));
        return buf;
}

/*
 * Writes s with its terminal controls made visible: C0 controls and DEL as
 * \xNN (\n, \t as such), C1 controls (U+0080-U+009F, which some terminals obey
 * as escape sequences) as \uNNNN. A server's strings never move the cursor,
 * retitle the window or recolour the terminal. Returns a new string or NULL.
 */
static char *escape_controls(const char *s) {
        size_t n = strlen(s);
        char *out = malloc(n * 6 + 1), *o = out;   /* worst case: every byte as \uNNNN */

        if (!out)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == '\n')
                        o += sprintf(o, "\\n");
                else if (*p == '\t')
                        o += sprintf(o, "\\t");
                else if (*p < 0x20 || *p == 0x7f)
                        o += sprintf(o, "\\x%02x", *p);
                else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
                        o += sprintf(o, "\\u%04x", *++p);
                else
                        *o++ = (char) *p;
        }
        *o = '\0';
        return out;
}

static bool needs_escaping(const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < 0x20 || *p == 0x7f || (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
                        return true;
        return false;
}

/* Escapes every string value of the tree in place (keys: see print_signals). */
static int escape_tree(json_object *o) {
        if (json_object_is_type(o, json_type_string)) {
                if (!needs_escaping(json_object_get_string(o)))
                        return 0;
                _cleanup_free_ char *e = escape_controls(json_object_get_string(o));
                return e && json_object_set_string(o, e) ? 0 : -ENOMEM;
        }
        if (json_object_is_type(o, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        if (escape_tree(json_object_array_get_idx(o, i)) < 0)
                                return -ENOMEM;
        } else if (json_object_is_type(o, json_type_object)) {
                json_object_object_foreach(o, key, v) {
                        (void) key;
                        if (v && escape_tree(v) < 0)
                                return -ENOMEM;
                }
        }
        return 0;
}

static void print_pool(json_object *root) {
        json_object *pool = get_typed(root, "pool", json_type_object);

        printf("corral %s: %.0f running, %.0f starting, %.0f stopping; desired %.0f (min %.0f, max %.0f)\n",
               str(root, "version", "?"), num(pool, "running"), num(pool, "starting"), num(pool, "stopping"),
               num(pool, "desired"), num(pool, "min"), num(pool, "max"));
        printf("health: %s; restarts %.0f; utilization %.0f%%\n",
               str(pool, "health", "?"), num(pool, "restarts"), num(pool, "utilization") * 100);
}

static void print_workers(json_object *root) {
        json_object *workers = get_typed(root, "workers", json_type_array);
        size_t n = workers ? json_object_array_length(workers) : 0;
        char rss[16], up[16];

        printf("\n%4s %8s %-9s %7s %8s %8s %8s %9s\n", "ID", "PID", "STATE", "CPU", "RSS", "TASKS", "RESTARTS", "UPTIME");
        for (size_t i = 0; i < n; i++) {
                json_object *w = json_object_array_get_idx(workers, i);
                printf("%4.0f %8.0f %-9s %6.1f%% %8s %8.0f %8.0f %9s%s%s\n",
                       num(w, "id"), num(w, "pid"), str(w, "state", "?"), num(w, "cpu"),
                       format_bytes(num(w, "rss"), rss), num(w, "tasks"), num(w, "restarts"),
                       format_seconds(num(w, "uptime"), up),
                       /* The worker's own STATUS= (notify protocol), escaped like every string. */
                       *str(w, "status", "") ? "  " : "", str(w, "status", ""));
        }
        if (n == 0)
                printf("     (no workers)\n");
}

static void print_signals(json_object *root) {
        json_object *signals = get_typed(root, "signals", json_type_object);

        printf("\nsignals:\n");
        if (!signals)
                return;
        json_object_object_foreach(signals, name, v) {
                _cleanup_free_ char *shown = escape_controls(name);
                if (!shown)
                        continue;
                if (!is_number(v))
                        printf("  %-16s unavailable\n", shown);
                else
                        printf("  %-16s %g%s\n", shown, json_object_get_double(v),
                               signal_is_percent(signal_from_name(name, strlen(name))) ? "%" : "");
        }
}

static void print_rules(json_object *root) {
        json_object *rules = get_typed(root, "rules", json_type_array);
        json_object *d = get_typed(root, "last_decision", json_type_object);
        size_t n = rules ? json_object_array_length(rules) : 0;
        char held[16], need[16];

        printf("\nrules:\n");
        for (size_t i = 0; i < n; i++) {
                json_object *r = json_object_array_get_idx(rules, i);
                json_object *h = get_typed(r, "holding", json_type_boolean);
                if (h && json_object_get_boolean(h))
                        printf("  %-16s holding %s of %s", str(r, "name", "?"),
                               format_seconds(num(r, "held"), held), format_seconds(num(r, "for"), need));
                else
                        printf("  %-16s not holding", str(r, "name", "?"));
                printf("   when %s\n", str(r, "when", "-"));
        }
        if (n == 0)
                printf("  (none)\n");

        if (!d)
                printf("\nlast decision: none yet\n");
        else if (!is_number(get(d, "from")) || !is_number(get(d, "to")))
                printf("\nlast decision: no change of size yet; latest by %s: %s\n", str(d, "rule", "?"),
                       str(d, "reason", ""));
        else
                printf("\nlast decision: %.0f -> %.0f by %s, %s ago: %s\n", num(d, "from"), num(d, "to"),
                       str(d, "rule", "?"), format_seconds(num(d, "age"), held), str(d, "reason", ""));
}

/* Bytes a terminal would act on, outside the whitespace a JSON text may hold. */
static bool has_raw_controls(const char *body, size_t len) {
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) body[i];
                if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
                        return true;
        }
        return false;
}

int cmd_status(int argc, char **argv) {
        static const struct option options[] = {
                { "url",  required_argument, NULL, 'u' },
                { "json", no_argument,       NULL, 'j' },
                { "help", no_argument,       NULL, 'h' },
                {}
        };
        const char *base = STATUS_DEFAULT_URL;
        _cleanup_free_ char *url = NULL, *body = NULL;
        bool json = false;
        size_t len;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'u':
                        base = optarg;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        fputs(help, stdout);
                        return EXIT_OK;
                default:
                        fputs(help, stderr);
                        return EXIT_USAGE;
                }
        if (optind < argc) {
                fprintf(stderr, "corral status: unexpected argument '%s'\n", argv[optind]);
                return EXIT_USAGE;
        }

        /* --url names the server, as --metrics does: /status is appended. */
        size_t n = strlen(base);
        while (n > 0 && base[n - 1] == '/')
                n--;
        if (asprintf(&url, "%.*s/status", (int) n, base) < 0)
                return EXIT_USAGE;

        if (curl_open() < 0)
                return EXIT_USAGE;
        if (curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                fprintf(stderr, "corral status: cannot initialise libcurl\n");
                return EXIT_USAGE;
        }
        int r = fetch(url, &body, &len);
        curl.global_cleanup();
        dlclose(curl.handle);
        if (r < 0)
                return EXIT_USAGE;

        enum json_tokener_error jerr;
        json_object *root = json_tokener_parse_verbose(body, &jerr);
        if (!root || !json_object_is_type(root, json_type_object) || !get_typed(root, "pool", json_type_object)) {
                fprintf(stderr, "corral status: %s did not answer a corral status (%s)\n", url,
                        root ? "no \"pool\" object" : json_tokener_error_desc(jerr));
                json_object_put(root);
                return EXIT_USAGE;
        }

        if (json && has_raw_controls(body, len)) {
                /* Not valid JSON (raw controls in a string): printed again by
                 * json-c, which escapes them. */
                puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        } else if (json) {
                fwrite(body, 1, len, stdout);
                if (len == 0 || body[len - 1] != '\n')
                        putchar('\n');
        } else if (escape_tree(root) < 0) {
                fprintf(stderr, "corral status: %s\n", strerror(ENOMEM));
                json_object_put(root);
                return EXIT_USAGE;
        } else {
                print_pool(root);
                print_workers(root);
                print_signals(root);
                print_rules(root);
        }
        json_object_put(root);
        return fflush(stdout) == 0 ? EXIT_OK : EXIT_USAGE;
}
