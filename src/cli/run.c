/* run.c — `slm run`: one prompt, its continuation streamed to stdout. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "util/alloc.h"

int cmd_run(int argc, char **argv) {
    run_opts o;
    run_opts_init(&o);
    for (int i = 1; i < argc; i++) {
        int r = run_opts_parse("run", &o, argc, argv, &i);
        if (r == 2) return 2;
        if (r == 0) return cli_usage("run", "unknown option '%s'", argv[i]);
    }
    if (!o.model) return cli_usage("run", "-m MODEL is required");
    if (!!o.prompt == !!o.file) return cli_usage("run", "give either -p PROMPT or -f FILE");
    int rc = 1;
    char *buf = NULL;
    int32_t *ids = NULL, n = 0;
    slm_ctx *ctx = NULL;
    gen_state st = { 0 };
    gen_result res = { 0 };
    slm_model *m = NULL;
    if (o.file && !(buf = cli_read_file(o.file, NULL))) goto done;
    const char *prompt = buf ? buf : o.prompt;
    if (!(m = cli_load_model(o.model, false))) goto done;
    const slm_vocab *v = slm_model_vocab(m);
    if (o.chat) {
        slm_chat_family fam = run_opts_family(&o, m);
        if (!fam) goto done;
        slm_chat_msg msgs[2];
        int32_t nm = 0;
        if (o.system) msgs[nm++] = (slm_chat_msg){ "system", o.system };
        msgs[nm++] = (slm_chat_msg){ "user", prompt };
        if (render_and_tokenize(m, fam, msgs, nm, &ids, &n)) goto done;
    } else if (cli_tokenize(v, prompt, slm_vocab_add_bos(v), true, &ids, &n)) {
        goto done;
    }
    if (!(ctx = run_opts_ctx(&o, m))) goto done;
    if (gen_run(ctx, v, &st, ids, n, &o.gen, stdout, &res)) goto done;
    printf("\n");
    fflush(stdout);
    if (o.stats)
        fprintf(stderr, "slm: prompt %d tokens in %.3f s (%.1f t/s), generated %d tokens in %.3f s (%.1f t/s), finish: %s\n",
                res.n_prompt, res.t_prompt_s, res.t_prompt_s > 0 ? res.n_prompt / res.t_prompt_s : 0, res.n_gen,
                res.t_gen_s, res.t_gen_s > 0 ? res.n_gen / res.t_gen_s : 0, res.finish);
    rc = 0;
done:
    slm_free(res.text);
    gen_state_free(&st);
    slm_ctx_free(ctx);
    slm_model_free(m);
    slm_free(ids);
    slm_free(buf);
    return rc;
}
