/*
 * test_gateway_config.c — loading the gateway YAML: a full example loads
 * with its values, and every kind of mistake is refused with a message that
 * names the file and the line. Also `slm gateway --check` as a user runs it.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/config.h"
#include "gateway/yaml.h"
#include "helpers.h"

static const char *example_path(void) {
    static char p[4096];
    const char *src = getenv("SLM_SRC");
    snprintf(p, sizeof p, "%s/tests/gw/example.yaml", src ? src : ".");
    return p;
}

/* Expects text to fail with a message containing want. */
static void refuse(const char *text, const char *want) {
    slm_gw_config *c = NULL;
    slm_err err = { 0 };
    int rc = slm_gw_config_parse(text, strlen(text), "t.yaml", &c, &err);
    cr_assert_neq(rc, 0, "accepted:\n%s", text);
    cr_assert_null(c);
    cr_assert(strstr(err.msg, want), "message \"%s\" lacks \"%s\"", err.msg, want);
}

#define MIN_TIERS "tiers:\n  - name: l\n    kind: local\n    upstreams:\n      - {name: a, url: 'http://127.0.0.1:1'}\n"
#define MIN_ROUTES "routes:\n  - {name: r, tiers: [l]}\n"

Test(gw_config, example_loads) {
    setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-000000000", 1);
    slm_gw_config *c = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_gw_config_load(example_path(), &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c->n_tiers, 2);
    cr_assert_eq(c->n_upstreams, 3);
    cr_assert_eq(c->n_routes, 3);
    cr_assert_eq(c->n_teams, 1);
    cr_assert_eq(c->port, 8088);
    cr_assert_str_eq(c->tiers[1].name, "frontier");
    cr_assert_float_eq(c->tiers[1].price_out, 10.0, 1e-9);
    cr_assert_float_eq(c->tiers[0].cost_per_replica_hour, 0.40, 1e-9);
    cr_assert_str_eq(c->upstreams[2].api_key, "sk-test-not-a-real-key-000000000");
    cr_assert(c->upstreams[0].health_check && !c->upstreams[2].health_check);
    cr_assert_eq(c->routes[0].private_data, 1);
    cr_assert_eq(c->routes[0].pd_policy, SLM_GW_PD_LOCAL_ONLY);
    cr_assert_eq(c->routes[1].n_tasks, 2);
    cr_assert_eq(c->routes[1].over_budget, SLM_GW_OVER_LOCAL);
    cr_assert_eq(c->routes[2].tiers[0], 1);
    cr_assert_eq(c->counterfactual_tier, 1);
    cr_assert_float_eq(c->teams[0].daily, 5.0, 1e-9);
    slm_gw_config_free(c);
}

Test(gw_config, minimal_config_gets_defaults) {
    const char *t = MIN_TIERS MIN_ROUTES;
    slm_gw_config *c = NULL;
    slm_err err = { 0 };
    cr_assert_eq(slm_gw_config_parse(t, strlen(t), "t.yaml", &c, &err), 0, "%s", err.msg);
    cr_assert_str_eq(c->host, "127.0.0.1");
    cr_assert_eq(c->counterfactual_tier, -1);
    cr_assert_str_eq(c->upstreams[0].adapter, "openai");
    cr_assert_eq(c->routes[0].pd_policy, SLM_GW_PD_ALLOW);
    slm_gw_config_free(c);
}

Test(gw_config, mistakes_name_the_line) {
    refuse("tiers: [\n", "t.yaml:");                                     /* YAML syntax */
    refuse(MIN_ROUTES, "t.yaml:1: config: 'tiers' is required");
    refuse(MIN_TIERS, "'routes' is required");
    refuse("listen:\n  port: 99999\n" MIN_TIERS MIN_ROUTES, "t.yaml:2: listen.port: 99999 is out of range");
    refuse("listen:\n  prot: 80\n" MIN_TIERS MIN_ROUTES, "t.yaml:2: listen: unknown key 'prot'");
    refuse("tiers:\n  - name: l\n    kind: lokal\n    upstreams: [{name: a, url: 'http://x'}]\n" MIN_ROUTES,
           "t.yaml:3: tiers[0].kind: 'lokal' is not one of local, frontier");
    refuse("tiers:\n  - name: l\n    kind: local\n    upstreams:\n      - {name: a, url: 'ftp://x'}\n" MIN_ROUTES,
           "t.yaml:5: tiers[0].upstreams[0].url: 'ftp://x' must start with http://");
    refuse("tiers:\n  - name: l\n    kind: local\n    upstreams:\n      - {name: a, url: 'http://x'}\n"
           "      - {name: a, url: 'http://y'}\n" MIN_ROUTES,
           "t.yaml:6: tiers[0].upstreams[1]: upstream name 'a' is already used on line 5");
    refuse(MIN_TIERS "routes:\n  - name: r\n    tiers: [l, nowhere]\n", "t.yaml:8: routes[0].tiers: no tier named 'nowhere'");
    refuse(MIN_TIERS "routes:\n  - name: r\n    tiers: [l]\n    private_data: maybe\n",
           "t.yaml:9: routes[0].private_data: 'maybe' is not one of allow, redact, local_only");
    refuse("tiers:\n  - name: f\n    kind: frontier\n    upstreams: [{name: a, url: 'http://x'}]\n"
           "routes:\n  - {name: r, tiers: [f], private_data: local_only}\n",
           "t.yaml:6: routes[0]: private_data is local_only but none of its tiers is local");
    refuse(MIN_TIERS "routes:\n  - name: r\n    tiers: [l]\n    match: {min_prompt_tokens: 10, max_prompt_tokens: 5}\n",
           "min_prompt_tokens 10 is above max_prompt_tokens 5");
    refuse(MIN_TIERS "routes:\n  - name: r\n    tiers: [l]\n    match: {max_prompt_tokens: lots}\n",
           "t.yaml:9: routes[0].match.max_prompt_tokens: 'lots' is not a number");
    refuse(MIN_TIERS MIN_ROUTES "teams:\n  - name: t\n    budget: {daily: 1}\n", "t.yaml:9: teams[0]: 'keys' or 'key_env' is required");
    refuse(MIN_TIERS MIN_ROUTES "teams:\n  - {name: t, keys: [k1]}\n  - {name: u, keys: [k1]}\n",
           "t.yaml:10: teams[1]: a key of team 'u' is also a key of team 't'");
    refuse(MIN_TIERS MIN_ROUTES "retry: {attempts: 1.5}\n", "t.yaml:8: retry.attempts: '1.5' is not a whole number");
    refuse(MIN_TIERS MIN_ROUTES "counterfactual_tier: l\n", "t.yaml:8: counterfactual_tier: 'l' is not a frontier tier");
    refuse("a: 1\na: 2\n", "t.yaml:2: duplicate key 'a'");
    refuse("x: &a 1\ny: *a\n", "aliases are not supported");
}

Test(gw_config, missing_key_env_is_an_error_and_never_printed) {
    unsetenv("SLM_GW_TEST_MISSING");
    refuse("tiers:\n  - name: f\n    kind: frontier\n    upstreams:\n"
           "      - {name: a, url: 'http://x', api_key_env: SLM_GW_TEST_MISSING}\n" MIN_ROUTES,
           "t.yaml:5: tiers[0].upstreams[0].api_key_env: environment variable SLM_GW_TEST_MISSING is not set");
}

Test(gw_config, check_command) {
    char cmd[8192], *out = NULL;
    snprintf(cmd, sizeof cmd, "OPENAI_API_KEY=sk-secret-value-123456789 %s gateway --check %s 2>&1", th_slm_bin(),
             example_path());
    cr_assert_eq(th_run(cmd, &out), 0, "%s", out);
    cr_assert(strstr(out, "ok"), "%s", out);
    cr_assert_null(strstr(out, "sk-secret-value"), "the key was printed: %s", out);
    free(out);
    const char *bad = th_tmp("bad.yaml");
    const char *bad_text = "tiers:\n  - name: l\n    kind: local\n";
    th_write_file(bad, bad_text, strlen(bad_text));
    snprintf(cmd, sizeof cmd, "%s gateway --check %s 2>&1", th_slm_bin(), bad);
    cr_assert_eq(th_run(cmd, &out), 1, "%s", out);
    cr_assert(strstr(out, "bad.yaml:2: tiers[0]: 'upstreams' is required"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s gateway 2>&1", th_slm_bin());
    cr_assert_eq(th_run(cmd, &out), 2, "%s", out);
    free(out);
}
