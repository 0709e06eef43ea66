/* SPDX-License-Identifier: MIT */
/* corral's entry point: blocks the run loop's signals, picks the subcommand. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>

#include "common/util.h"
#include "supervisor/commands.h"

static const char usage[] =
        "Usage: corral COMMAND [OPTIONS]\n"
        "\n"
        "An adaptive, load-balancing process supervisor.\n"
        "\n"
        "  run [OPTIONS] [--] COMMAND [ARG...]  run and supervise a pool of COMMAND\n"
        "  check -c FILE                        validate a configuration file\n"
        "  sample [-n COUNT] [--interval D] [--json]  print the signals corral sees\n"
        "  status [--url URL] [--json]          ask a running corral what it does\n"
        "  enqueue URL [FILE|-]                 add task lines to a work queue (Redis stream)\n"
        "  version                              print the version\n"
        "\n"
        "'corral COMMAND --help' describes each command; see also corral(1).\n";

static int cmd_version(int argc, char **argv) {
        (void) argc;
        (void) argv;
        printf("corral %s\n", CORRAL_VERSION);
        return EXIT_OK;
}

/* The signals `corral run` handles on its loop. Blocked before anything else
 * happens: `run` reads its configuration (maybe slowly) before the loop exists,
 * and until then a HUP or TERM would kill it by their default action and a
 * TTIN or TTOU would stop it. Blocked, they wait and are acted on once the
 * loop reads them. Blocking also comes before any thread (libmicrohttpd's),
 * which sd-event requires; workers unblock them before exec. */
static const int loop_signals[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGTTIN, SIGTTOU };

/* Fills a closed fd 0, 1 or 2 with /dev/null, so that the first file corral
 * or a library opens (libproc2's /proc/stat) does not become a standard
 * stream: `--tasks -` would read it, a worker would inherit it as stdin.
 * Opened read-only, so that a write to a stdout or stderr that was closed
 * still fails with EBADF, as it did: a closed stdout stays an error. */
static void fill_closed_stdio(void) {
        for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++)
                if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDONLY) != fd)
                        break;    /* opens take the lowest free fd: this one */
}

int main(int argc, char **argv) {
        static const struct {
                const char *name;
                int (*run)(int argc, char **argv);
        } commands[] = {
                { "run",     cmd_run },
                { "check",   cmd_check },
                { "sample",  cmd_sample },
                { "status",  cmd_status },
                { "enqueue", cmd_enqueue },
                { "version", cmd_version },
                { "--version", cmd_version },
        };
        sigset_t block, old;

        fill_closed_stdio();
        sigemptyset(&block);
        for (size_t i = 0; i < ELEMENTSOF(loop_signals); i++)
                sigaddset(&block, loop_signals[i]);
        if (sigprocmask(SIG_BLOCK, &block, &old) < 0) {
                perror("corral: Failed to block signals");
                return EXIT_USAGE;
        }

        /* The other commands keep the default actions (a TERM ends `corral
         * sample`); what arrived meanwhile is delivered now. `run` resets an
         * inherited SIG_IGN: with SIGCHLD ignored the kernel reaps the workers
         * itself and the loop fails with ECHILD at the first exit. */
        if (argc < 2 || strcmp(argv[1], "run") != 0)
                (void) sigprocmask(SIG_SETMASK, &old, NULL);
        else
                for (size_t i = 0; i < ELEMENTSOF(loop_signals); i++)
                        (void) signal(loop_signals[i], SIG_DFL);
        if (argc < 2) {
                fprintf(stderr, "corral: no command given\n\n%s", usage);
                return EXIT_USAGE;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
                fputs(usage, stdout);
                return EXIT_OK;
        }
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(argv[1], commands[i].name) == 0)
                        return commands[i].run(argc - 1, argv + 1);

        fprintf(stderr, "corral: unknown command '%s'\n\n%s", argv[1], usage);
        return EXIT_USAGE;
}
