/*
 * chat.c — `slm chat`: an interactive conversation. Each turn renders the
 * whole conversation with the chat template; the generation loop reuses the
 * KV cache for the prefix that did not change, so a turn costs only its new
 * tokens. /reset forgets the conversation, /exit (or end of input) quits.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "util/alloc.h"

#define MAX_TURNS 4096

int cmd_chat(int argc, char **argv) {
    run_opts o;
    run_opts_init(&o);
    o.gen.n_predict = -1;
    for (int i = 1; i < argc; i++) {
        int r = run_opts_parse("chat", &o, argc, argv, &i);
        if (r == 2) return 2;
        if (r == 0) return cli_usage("chat", "unknown option '%s'", argv[i]);
    }
    if (!o.model) return cli_usage("chat", "-m MODEL is required");
    slm_model *m = cli_load_model(o.model, false);
    if (!m) return 1;
    slm_chat_family fam = run_opts_family(&o, m);
    slm_ctx *ctx = fam ? run_opts_ctx(&o, m) : NULL;
    if (!ctx) {
        slm_model_free(m);
        return 1;
    }
    const slm_vocab *v = slm_model_vocab(m);
    bool tty = isatty(0) && isatty(1);
    slm_chat_msg *msgs = slm_calloc(MAX_TURNS, sizeof *msgs);
    char **owned = slm_calloc(MAX_TURNS, sizeof *owned);
    int32_t nm = 0, rc = 0;
    gen_state st = { 0 };
    if (!msgs || !owned) { rc = cli_fail("out of memory"); goto done; }
    if (o.system) msgs[nm++] = (slm_chat_msg){ "system", o.system };
    int32_t base = nm;
    if (tty) fprintf(stderr, "slm chat — %s template; /reset forgets, /exit quits\n", slm_chat_family_name(fam));
    char line[65536];
    for (;;) {
        if (tty) { fputs("\n> ", stdout); fflush(stdout); }
        if (!fgets(line, sizeof line, stdin)) break;
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!len) continue;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!strcmp(line, "/reset")) {
            for (int32_t i = base; i < nm; i++) slm_free(owned[i]);
            nm = base;
            continue;
        }
        if (nm + 2 >= MAX_TURNS) { rc = cli_fail("conversation too long"); break; }
        owned[nm] = slm_strdup(line);
        msgs[nm] = (slm_chat_msg){ "user", owned[nm] };
        nm++;
        int32_t *ids = NULL, n = 0;
        if (render_and_tokenize(m, fam, msgs, nm, &ids, &n)) { rc = 1; break; }
        gen_result res;
        int g = gen_run(ctx, v, &st, ids, n, &o.gen, stdout, &res);
        slm_free(ids);
        if (g) { rc = 1; break; }
        fputs("\n", stdout);
        fflush(stdout);
        owned[nm] = res.text;
        msgs[nm] = (slm_chat_msg){ "assistant", res.text };
        nm++;
        if (!strcmp(res.finish, "context")) {
            fprintf(stderr, "slm: the context is full; /reset to start over\n");
        }
    }
done:
    for (int32_t i = 0; owned && i < nm; i++) slm_free(owned[i]);
    slm_free(owned);
    slm_free(msgs);
    gen_state_free(&st);
    slm_ctx_free(ctx);
    slm_model_free(m);
    return rc;
}
