/*
 * gateway.c — `slm gateway -c FILE` runs the gateway; `slm gateway --check
 * FILE` only validates the config. SIGHUP reloads the file (a bad file is
 * reported and the running config kept), SIGINT/SIGTERM stop. Signals are
 * blocked before any thread starts and taken with sigwait on the main
 * thread, so no handler and no global is needed.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "gateway/config.h"
#include "gateway/gateway.h"

static int check(const char *path) {
    slm_gw_config *c = NULL;
    slm_err err = { 0 };
    if (slm_gw_config_load(path, &c, &err)) return cli_fail("%s", err.msg);
    printf("%s: ok (%d tiers, %d upstreams, %d routes, %d teams)\n", path, c->n_tiers, c->n_upstreams, c->n_routes,
           c->n_teams);
    slm_gw_config_free(c);
    return 0;
}

int cmd_gateway(int argc, char **argv) {
    const char *cfg_path = NULL, *check_path = NULL;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) cfg_path = argv[++i];
        else if (!strcmp(argv[i], "--check") && i + 1 < argc) check_path = argv[++i];
        else return cli_usage("gateway", "unknown option '%s'", argv[i]);
    }
    if (check_path) return check(check_path);
    if (!cfg_path) return cli_usage("gateway", "-c FILE is required");
    slm_gw_config *cfg = NULL;
    slm_err err = { 0 };
    if (slm_gw_config_load(cfg_path, &cfg, &err)) return cli_fail("%s", err.msg);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    slm_gw *gw = NULL;
    if (slm_gw_new(cfg, &gw, &err) || slm_gw_start(gw, &err)) {
        slm_gw_free(gw);
        return cli_fail("%s", err.msg);
    }
    fprintf(stderr, "slm gateway: listening on port %d\n", slm_gw_port(gw));
    fflush(stderr);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig)) continue;
        if (sig != SIGHUP) break;
        slm_gw_config *nc = NULL;
        slm_err e2 = { 0 };
        if (slm_gw_config_load(cfg_path, &nc, &e2)) {
            fprintf(stderr, "slm gateway: reload refused, keeping the running config: %s\n", e2.msg);
        } else if (slm_gw_reload(gw, nc, &e2)) {
            fprintf(stderr, "slm gateway: reload failed: %s\n", e2.msg);
        } else {
            fprintf(stderr, "slm gateway: reloaded %s\n", cfg_path);
        }
        fflush(stderr);
    }
    fprintf(stderr, "slm gateway: stopping\n");
    slm_gw_free(gw);
    return 0;
}
