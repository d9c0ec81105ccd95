/*
 * run.c — see run.h. Threads: per target, cfg.concurrency workers; plus the
 * caller, which collects. Workers hand results over through one queue
 * (mutex + condition variable; the mutex is a leaf lock, never held while
 * calling a target, a scorer or SQLite). The collector batches what it
 * finds in the queue into one transaction. Judge calls go through
 * slm_eval_target_ask, which serialises calls per judge target.
 */
#include "eval/run.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/alloc.h"
#include "util/err.h"
#include "util/progress.h"

typedef struct item {
    struct item *next;
    int ti;                          /* target index                      */
    slm_eval_db_result r;            /* owned strings                     */
} item;

typedef struct tstate {
    slm_eval_target *t;
    atomic_int next;                 /* next case index to take           */
    bool has_price;
    double price_in, price_out;
    int64_t done;                    /* collector only                    */
} tstate;

typedef struct run_state {
    const slm_eval_run_opts *o;
    tstate *ts;
    pthread_mutex_t mu;              /* guards head, tail; leaf lock      */
    pthread_cond_t cv;
    item *head, *tail;
} run_state;

typedef struct worker {
    run_state *rs;
    int ti;
    pthread_t th;
    bool started;
} worker;

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void push(run_state *rs, item *it) {
    pthread_mutex_lock(&rs->mu);
    if (rs->tail) rs->tail->next = it;
    else rs->head = it;
    rs->tail = it;
    pthread_cond_signal(&rs->cv);
    pthread_mutex_unlock(&rs->mu);
}

/* The judge scorer's callback: a target of the run by name. */
static int judge_cb(void *ud, const char *name, const char *prompt, char **reply, slm_err *err) {
    const slm_eval_run_opts *o = ud;
    for (int pass = 0; pass < 2; pass++) {
        slm_eval_target *const *list = pass ? o->targets : o->judges;
        int n = pass ? o->n_targets : o->n_judges;
        for (int i = 0; i < n; i++)
            if (!strcmp(list[i]->cfg.name, name)) {
                cJSON *params = cJSON_CreateObject();
                if (params) cJSON_AddNumberToObject(params, "temperature", 0);
                int rc = slm_eval_target_ask(list[i], prompt, params, reply, err);
                cJSON_Delete(params);
                return rc;
            }
    }
    return slm_err_set(err, SLM_ENOTFOUND, "judge target '%s' is not part of this run (add it with --judge)", name);
}

static char *fields_json(const slm_eval_score *sc) {
    if (!sc->fields || !sc->n_fields) return NULL;
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < sc->n_fields; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddItemToArray(a, f);
        cJSON_AddStringToObject(f, "name", sc->fields[i].name);
        cJSON_AddNumberToObject(f, "tp", sc->fields[i].tp);
        cJSON_AddNumberToObject(f, "fp", sc->fields[i].fp);
        cJSON_AddNumberToObject(f, "fn", sc->fields[i].fn);
    }
    char *s = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    char *out = s ? slm_strdup(s) : NULL;
    cJSON_free(s);
    return out;
}

static char *dup_opt(const char *s) { return s ? slm_strdup(s) : NULL; }

/* Answers and scores case ci for target ti; the result goes to the queue. */
static void do_case(run_state *rs, int ti, void *ws, const char *ws_error, int ci) {
    const slm_eval_run_opts *o = rs->o;
    tstate *ts = &rs->ts[ti];
    const slm_eval_case *c = &o->suite->cases[ci];
    item *it = slm_calloc(1, sizeof *it);
    if (!it) return;   /* the collector counts missing results as lost: see slm_eval_run */
    it->ti = ti;
    slm_eval_db_result *r = &it->r;
    r->idx = ci;
    r->target = slm_strdup(ts->t->cfg.name);
    r->case_id = slm_strdup(c->id);
    r->scorer_name = slm_strdup(slm_eval_scorer_name(c->scorer));
    r->agg = (int)slm_eval_scorer_agg(c->scorer);
    r->cost = NAN;
    slm_eval_reply rep = { 0 };
    if (ws_error) {
        rep.error = SLM_EIO;
        snprintf(rep.error_msg, sizeof rep.error_msg, "%.250s", ws_error);
        rep.tokens_in = rep.tokens_out = -1;
    } else if (o->cancel && *o->cancel) {
        rep.error = SLM_ECANCELED;
        snprintf(rep.error_msg, sizeof rep.error_msg, "cancelled: the run was interrupted");
        rep.tokens_in = rep.tokens_out = -1;
    } else {
        slm_eval_target_complete(ts->t, ws, c->messages, c->params, o->cancel, &rep);
    }
    r->attempts = rep.attempts;
    r->http_status = rep.http_status;
    r->latency_ms = rep.latency_ms;
    r->tokens_in = rep.tokens_in;
    r->tokens_out = rep.tokens_out;
    if (ts->has_price)
        r->cost = ((rep.tokens_in > 0 ? (double)rep.tokens_in : 0) * ts->price_in +
                   (rep.tokens_out > 0 ? (double)rep.tokens_out : 0) * ts->price_out) / 1e6;
    if (rep.error) {
        r->error = slm_strdup(rep.error_msg[0] ? rep.error_msg : slm_strerror(rep.error));
    } else {
        r->output = rep.output;
        rep.output = NULL;
        slm_eval_case_view view = { .id = c->id, .input = c->input, .expected = c->expected,
                                    .judge = judge_cb, .judge_ud = (void *)o };
        slm_eval_score sc;
        slm_err e = { 0 };
        int rc = slm_eval_scorer_score(c->scorer, &view, r->output, &sc, &e);
        r->scored = true;
        if (rc) {
            r->score = 0;
            r->score_error = slm_strdup(e.msg[0] ? e.msg : slm_strerror(rc));
        } else {
            r->score = isfinite(sc.score) ? sc.score : 0;
            r->pass = sc.pass;
            if (sc.error) r->score_error = slm_strdup(sc.detail ? sc.detail : slm_strerror(sc.error));
            else r->detail = dup_opt(sc.detail);
            r->pred_label = dup_opt(sc.pred_label);
            r->gold_label = dup_opt(sc.gold_label);
            r->fields = fields_json(&sc);
        }
        slm_eval_score_clear(&sc);
    }
    slm_eval_reply_clear(&rep);
    r->finished = wall_now();
    push(rs, it);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    run_state *rs = w->rs;
    tstate *ts = &rs->ts[w->ti];
    void *ws = NULL;
    slm_err e = { 0 };
    char msg[600] = "";
    if (ts->t->ops->worker_new(ts->t, &ws, &e)) snprintf(msg, sizeof msg, "worker: %s", e.msg);
    int n = rs->o->suite->n_cases;
    for (int ci; (ci = atomic_fetch_add(&ts->next, 1)) < n;) do_case(rs, w->ti, ws, msg[0] ? msg : NULL, ci);
    if (ws) ts->t->ops->worker_free(ts->t, ws);
    return NULL;
}

/* The run's row, its targets and its cases, in one transaction. */
static int record_start(const slm_eval_run_opts *o, const tstate *ts, const char *id, slm_err *err) {
    const slm_eval_suite *s = o->suite;
    cJSON *names = cJSON_CreateArray(), *params = cJSON_CreateObject();
    for (int i = 0; names && i < o->n_targets; i++) cJSON_AddItemToArray(names, cJSON_CreateString(o->targets[i]->cfg.name));
    if (params) {
        cJSON_AddItemToObject(params, "suite", cJSON_Duplicate(s->params, true));
        cJSON *rp = o->run_params ? cJSON_Parse(o->run_params) : NULL;
        if (rp) cJSON_AddItemToObject(params, "run", rp);
    }
    char *nj = names ? cJSON_PrintUnformatted(names) : NULL, *pj = params ? cJSON_PrintUnformatted(params) : NULL;
    cJSON_Delete(names);
    cJSON_Delete(params);
    int rc = 0;
    if (!nj || !pj) {
        rc = slm_err_set(err, SLM_ENOMEM, "out of memory");
        goto done;
    }
    slm_eval_db_run run = { .suite_name = s->name, .suite_path = s->path, .suite_hash = (char *)s->hash,
                            .n_cases = s->n_cases, .targets = nj, .params = pj, .started = wall_now(),
                            .status = "running", .baseline = (char *)o->baseline };
    snprintf(run.id, sizeof run.id, "%s", id);
    if ((rc = slm_eval_db_begin(o->db, err))) goto done;
    if ((rc = slm_eval_db_add_run(o->db, &run, err))) goto rollback;
    for (int i = 0; i < o->n_targets; i++) {
        const slm_eval_target *t = o->targets[i];
        slm_eval_db_target dt = { .name = t->cfg.name, .kind = (char *)t->ops->kind, .endpoint = (char *)t->endpoint,
                                  .model = t->cfg.url ? t->cfg.model : NULL, .has_price = ts[i].has_price,
                                  .price_in = ts[i].price_in, .price_out = ts[i].price_out,
                                  .concurrency = t->cfg.concurrency, .retries = t->cfg.retries,
                                  .timeout_s = t->cfg.timeout_s, .rps = t->cfg.rps };
        if ((rc = slm_eval_db_add_target(o->db, id, &dt, err))) goto rollback;
    }
    for (int i = 0; i < s->n_cases; i++) {
        const slm_eval_case *c = &s->cases[i];
        char *msgs = cJSON_PrintUnformatted(c->messages);
        char *exp = c->expected ? cJSON_PrintUnformatted(c->expected) : NULL;
        slm_eval_db_case dc = { .idx = i, .case_id = c->id, .input = c->input, .messages = msgs, .expected = exp,
                                .scorer = c->scorer_spec, .tags = c->tags, .n_tags = c->n_tags };
        rc = msgs && (exp || !c->expected) ? slm_eval_db_add_case(o->db, id, &dc, err) : slm_err_set(err, SLM_ENOMEM, "out of memory");
        cJSON_free(msgs);
        cJSON_free(exp);
        if (rc) goto rollback;
    }
    rc = slm_eval_db_commit(o->db, err);
    goto done;
rollback:
    slm_eval_db_rollback(o->db);
done:
    cJSON_free(nj);
    cJSON_free(pj);
    return rc;
}

/* Judge targets named by the suite's scorers must be in the run. */
static int check_judges(const slm_eval_run_opts *o, slm_err *err) {
    for (int i = 0; i < o->suite->n_scorers; i++) {
        const char *name = slm_eval_scorer_judge_target(o->suite->scorers[i]);
        if (!name) continue;
        bool found = false;
        for (int k = 0; k < o->n_targets && !found; k++) found = !strcmp(o->targets[k]->cfg.name, name);
        for (int k = 0; k < o->n_judges && !found; k++) found = !strcmp(o->judges[k]->cfg.name, name);
        if (!found)
            return slm_err_set(err, SLM_EINVAL, "the judge scorer names target '%s': add it with --judge %s=URL,…", name, name);
    }
    return 0;
}

int slm_eval_run(const slm_eval_run_opts *o, char id[SLM_EVAL_RUN_ID_LEN + 1], slm_err *err) {
    id[0] = 0;
    int rc = check_judges(o, err);
    if (rc) return rc;
    run_state rs = { .o = o };
    int n_workers = 0;
    for (int i = 0; i < o->n_targets; i++) n_workers += o->targets[i]->cfg.concurrency;
    rs.ts = slm_calloc((size_t)o->n_targets, sizeof *rs.ts);
    worker *ws = slm_calloc((size_t)(n_workers ? n_workers : 1), sizeof *ws);
    if (!rs.ts || !ws) {
        slm_free(rs.ts);
        slm_free(ws);
        return slm_err_set(err, SLM_ENOMEM, "out of memory");
    }
    for (int i = 0; i < o->n_targets; i++) {
        tstate *t = &rs.ts[i];
        t->t = o->targets[i];
        atomic_init(&t->next, 0);
        t->has_price = t->t->cfg.has_price;
        t->price_in = t->t->cfg.price_in;
        t->price_out = t->t->cfg.price_out;
        if (!t->has_price)
            t->has_price = slm_eval_suite_price(o->suite, t->t->cfg.name, t->t->cfg.url ? t->t->cfg.model : NULL,
                                                &t->price_in, &t->price_out);
    }
    char seed[512];
    snprintf(seed, sizeof seed, "%s %s %d", o->suite->name, o->suite->hash, o->n_targets);
    if ((rc = slm_eval_db_new_id(o->db, seed, id, err)) || (rc = record_start(o, rs.ts, id, err))) {
        id[0] = 0;
        slm_free(rs.ts);
        slm_free(ws);
        return rc;
    }
    pthread_mutex_init(&rs.mu, NULL);
    pthread_cond_init(&rs.cv, NULL);
    int k = 0;
    for (int i = 0; i < o->n_targets; i++)
        for (int j = 0; j < o->targets[i]->cfg.concurrency; j++, k++) {
            ws[k] = (worker){ .rs = &rs, .ti = i };
            ws[k].started = pthread_create(&ws[k].th, NULL, worker_main, &ws[k]) == 0;
        }
    /* a target none of whose workers started still owes its results */
    for (int i = 0, w0 = 0; i < o->n_targets; w0 += o->targets[i]->cfg.concurrency, i++) {
        bool any = false;
        for (int j = 0; j < o->targets[i]->cfg.concurrency; j++) any |= ws[w0 + j].started;
        if (!any)
            for (int ci; (ci = atomic_fetch_add(&rs.ts[i].next, 1)) < o->suite->n_cases;)
                do_case(&rs, i, NULL, "could not start a worker thread", ci);
    }

    int64_t total = (int64_t)o->suite->n_cases * o->n_targets, got = 0;
    int db_rc = 0;
    slm_err db_err = { 0 };
    double last_tick = 0;
    while (got < total) {
        pthread_mutex_lock(&rs.mu);
        if (!rs.head) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += 100 * 1000000L;
            if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&rs.cv, &rs.mu, &until);
        }
        item *batch = rs.head;
        rs.head = rs.tail = NULL;
        pthread_mutex_unlock(&rs.mu);
        bool all_joined = true;
        if (!batch) {
            /* workers that ran out of memory for an item leave a gap: stop when all are gone */
            for (int i = 0; i < n_workers; i++)
                if (ws[i].started && pthread_tryjoin_np(ws[i].th, NULL) != 0) all_joined = false;
                else ws[i].started = false;
            if (all_joined) {
                pthread_mutex_lock(&rs.mu);
                bool empty = !rs.head;
                pthread_mutex_unlock(&rs.mu);
                if (empty) break;
            }
        }
        if (batch && !db_rc) db_rc = slm_eval_db_begin(o->db, &db_err);
        for (item *it = batch, *next; it; it = next) {
            next = it->next;
            if (!db_rc) db_rc = slm_eval_db_add_result(o->db, id, &it->r, &db_err);
            rs.ts[it->ti].done++;
            got++;
            if (o->progress) o->progress(o->progress_ud, it->ti, rs.ts[it->ti].done, o->suite->n_cases);
            slm_eval_db_result_clear(&it->r);
            slm_free(it);
        }
        if (batch && !db_rc) db_rc = slm_eval_db_commit(o->db, &db_err);
        double now = slm_now();
        if (o->progress && now - last_tick > 0.1) {
            last_tick = now;
            for (int i = 0; i < o->n_targets; i++) o->progress(o->progress_ud, i, rs.ts[i].done, o->suite->n_cases);
        }
    }
    for (int i = 0; i < n_workers; i++)
        if (ws[i].started) pthread_join(ws[i].th, NULL);
    pthread_mutex_destroy(&rs.mu);
    pthread_cond_destroy(&rs.cv);
    bool cancelled = o->cancel && *o->cancel;
    const char *status = db_rc ? "failed" : got < total ? "incomplete" : cancelled ? "interrupted" : "done";
    slm_eval_db_finish_run(o->db, id, wall_now(), status, db_rc ? NULL : &db_err);
    slm_free(rs.ts);
    slm_free(ws);
    if (db_rc) {
        if (err) *err = db_err;
        return db_rc;
    }
    if (got < total)
        return slm_err_set(err, SLM_ENOMEM, "out of memory: %lld of %lld results were lost", (long long)(total - got),
                           (long long)total);
    return 0;
}
