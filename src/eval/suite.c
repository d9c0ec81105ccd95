/*
 * suite.c — see suite.h. The file is read whole, split into lines and each
 * line parsed with cJSON; every check names file:line and the field. The
 * header may be the first line ({"suite": {...}}) or a separate JSON file
 * with "cases" pointing at the JSONL (resolved next to the header). Case
 * params are the header's with the case's keys replacing theirs. Scorers
 * are cached by their spec's JSON text, so a suite of 10,000 cases with one
 * scorer compiles one regex.
 */
#include "eval/suite.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/alloc.h"
#include "util/err.h"

uint64_t slm_eval_fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static char *read_all(const char *path, size_t *len, slm_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        slm_err_set(err, SLM_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = slm_malloc(cap);
    while (buf) {
        if (cap - n < 2) {
            char *nb = slm_realloc(buf, cap * 2);
            if (!nb) { slm_free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    bool bad = buf && ferror(f);
    fclose(f);
    if (!buf) {
        slm_err_set(err, SLM_ENOMEM, "out of memory reading %s", path);
        return NULL;
    }
    if (bad) {
        slm_free(buf);
        slm_err_set(err, SLM_EIO, "%s: read error", path);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* ---- params ------------------------------------------------------------------ */

static bool is_int(const cJSON *v) { return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble); }

int slm_eval_params_check(const cJSON *params, const char *where, slm_err *err) {
    if (!cJSON_IsObject(params)) return slm_err_set(err, SLM_EINVAL, "%s: params: must be an object", where);
    for (const cJSON *v = params->child; v; v = v->next) {
        const char *k = v->string;
        if (!strcmp(k, "temperature") || !strcmp(k, "top_p") || !strcmp(k, "min_p") ||
            !strcmp(k, "presence_penalty") || !strcmp(k, "frequency_penalty")) {
            if (!cJSON_IsNumber(v) || v->valuedouble < -2 || v->valuedouble > 100)
                return slm_err_set(err, SLM_EINVAL, "%s: params.%s: must be a number", where, k);
        } else if (!strcmp(k, "max_tokens")) {
            if (!is_int(v) || v->valuedouble < 1 || v->valuedouble > 1e6)
                return slm_err_set(err, SLM_EINVAL, "%s: params.max_tokens: must be an integer >= 1", where);
        } else if (!strcmp(k, "top_k") || !strcmp(k, "seed")) {
            if (!is_int(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740991.0)
                return slm_err_set(err, SLM_EINVAL, "%s: params.%s: must be an integer >= 0", where, k);
        } else if (!strcmp(k, "stop")) {
            bool ok = cJSON_IsString(v) || cJSON_IsArray(v);
            if (cJSON_IsArray(v))
                for (const cJSON *s = v->child; s; s = s->next) ok &= cJSON_IsString(s);
            if (!ok) return slm_err_set(err, SLM_EINVAL, "%s: params.stop: must be a string or an array of strings", where);
        } else if (!strcmp(k, "response_format")) {
            bool ok = cJSON_IsObject(v) ||
                      (cJSON_IsString(v) && (!strcmp(v->valuestring, "json_object") || !strcmp(v->valuestring, "text")));
            if (!ok)
                return slm_err_set(err, SLM_EINVAL, "%s: params.response_format: must be \"json_object\", \"text\" or an object", where);
        } else {
            return slm_err_set(err, SLM_EINVAL,
                               "%s: params.%s: unknown parameter (temperature, top_p, top_k, min_p, max_tokens, seed, stop, "
                               "presence_penalty, frequency_penalty, response_format)", where, k);
        }
    }
    return 0;
}

/* ---- loading --------------------------------------------------------------------- */

typedef struct loader {
    slm_eval_suite *s;
    const char *file;         /* the cases file, for messages */
    const cJSON *scorer;      /* the header's scorer spec (borrowed) */
    slm_err *err;
} loader;

static int add_scorer(loader *L, const cJSON *spec, const char *where, const slm_eval_scorer **out, char **key_out) {
    slm_eval_suite *s = L->s;
    char *key = cJSON_PrintUnformatted(spec);
    if (!key) return slm_err_set(L->err, SLM_ENOMEM, "out of memory");
    for (int i = 0; i < s->n_scorers; i++)
        if (!strcmp(s->scorer_keys[i], key)) {
            *out = s->scorers[i];
            *key_out = slm_strdup(key);
            cJSON_free(key);
            return *key_out ? 0 : slm_err_set(L->err, SLM_ENOMEM, "out of memory");
        }
    slm_eval_scorer *sc = NULL;
    slm_err e = { 0 };
    int rc = slm_eval_scorer_from_json(spec, &sc, &e);
    if (rc) {
        cJSON_free(key);
        return slm_err_set(L->err, rc == SLM_ENOMEM ? SLM_ENOMEM : SLM_EINVAL, "%s: %s", where, e.msg);
    }
    slm_eval_scorer **ns = slm_realloc(s->scorers, (size_t)(s->n_scorers + 1) * sizeof *ns);
    if (ns) s->scorers = ns;
    char **nk = ns ? slm_realloc(s->scorer_keys, (size_t)(s->n_scorers + 1) * sizeof *nk) : NULL;
    if (nk) s->scorer_keys = nk;
    char *kd = slm_strdup(key);
    *key_out = slm_strdup(key);
    cJSON_free(key);
    if (!ns || !nk || !kd || !*key_out) {
        slm_eval_scorer_free(sc);
        slm_free(kd);
        return slm_err_set(L->err, SLM_ENOMEM, "out of memory");
    }
    s->scorers[s->n_scorers] = sc;
    s->scorer_keys[s->n_scorers++] = kd;
    *out = sc;
    return 0;
}

static int check_messages(const cJSON *m, const char *where, slm_err *err) {
    if (!cJSON_IsArray(m) || !m->child) return slm_err_set(err, SLM_EINVAL, "%s: messages: must be a non-empty array", where);
    int i = 0;
    for (const cJSON *x = m->child; x; x = x->next, i++) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(x, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(x, "content");
        if (!cJSON_IsObject(x) || !cJSON_IsString(role) || !cJSON_IsString(content))
            return slm_err_set(err, SLM_EINVAL, "%s: messages[%d]: must be {\"role\": string, \"content\": string}", where, i);
        const char *r = role->valuestring;
        if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant"))
            return slm_err_set(err, SLM_EINVAL, "%s: messages[%d].role: '%s' is not system, user or assistant", where, i, r);
    }
    return 0;
}

/* "role: content" blocks, or the content alone for one user message. */
static char *render_input(const cJSON *msgs) {
    size_t n = 0;
    int count = 0;
    for (const cJSON *x = msgs->child; x; x = x->next, count++)
        n += strlen(cJSON_GetObjectItemCaseSensitive(x, "role")->valuestring) +
             strlen(cJSON_GetObjectItemCaseSensitive(x, "content")->valuestring) + 4;
    char *out = slm_malloc(n + 1), *p = out;
    if (!out) return NULL;
    *p = 0;
    for (const cJSON *x = msgs->child; x; x = x->next) {
        const char *r = cJSON_GetObjectItemCaseSensitive(x, "role")->valuestring;
        const char *c = cJSON_GetObjectItemCaseSensitive(x, "content")->valuestring;
        if (count == 1) p += sprintf(p, "%s", c);
        else p += sprintf(p, "%s%s: %s", p == out ? "" : "\n\n", r, c);
    }
    return out;
}

static int parse_case(loader *L, cJSON *o, int line, slm_eval_case *c) {
    slm_eval_suite *s = L->s;
    slm_err *err = L->err;
    char where[600];
    snprintf(where, sizeof where, "%s:%d", L->file, line);
    c->line = line;
    static const char *const keys[] = { "id", "messages", "prompt", "expected", "scorer", "tags", "params", "system", "meta", NULL };
    for (const cJSON *v = o->child; v; v = v->next) {
        bool known = false;
        for (int i = 0; keys[i]; i++) known |= !strcmp(v->string, keys[i]);
        if (!known)
            return slm_err_set(err, SLM_EINVAL, "%s: unknown key '%s' (id, messages, prompt, expected, scorer, tags, params, system, meta)",
                               where, v->string);
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    char idbuf[32];
    if (id && !cJSON_IsString(id) && !is_int(id)) return slm_err_set(err, SLM_EINVAL, "%s: id: must be a string or an integer", where);
    if (cJSON_IsString(id) && !id->valuestring[0]) return slm_err_set(err, SLM_EINVAL, "%s: id: must not be empty", where);
    if (is_int(id)) snprintf(idbuf, sizeof idbuf, "%.0f", id->valuedouble);
    else snprintf(idbuf, sizeof idbuf, "line-%d", line);
    c->id = slm_strdup(cJSON_IsString(id) ? id->valuestring : idbuf);
    if (!c->id) return slm_err_set(err, SLM_ENOMEM, "out of memory");

    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(o, "messages");
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(o, "prompt");
    if (!!msgs == !!prompt) return slm_err_set(err, SLM_EINVAL, "%s: give either \"messages\" or \"prompt\"", where);
    if (prompt && !cJSON_IsString(prompt)) return slm_err_set(err, SLM_EINVAL, "%s: prompt: must be a string", where);
    if (msgs) {
        int rc = check_messages(msgs, where, err);
        if (rc) return rc;
    }
    const cJSON *sys = cJSON_GetObjectItemCaseSensitive(o, "system");
    if (sys && !cJSON_IsString(sys) && !cJSON_IsNull(sys)) return slm_err_set(err, SLM_EINVAL, "%s: system: must be a string", where);
    const char *system = sys ? (cJSON_IsString(sys) ? sys->valuestring : NULL) : s->system;
    c->messages = cJSON_CreateArray();
    if (!c->messages) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    bool has_system = msgs && !strcmp(cJSON_GetObjectItemCaseSensitive(msgs->child, "role")->valuestring, "system");
    if (system && system[0] && !has_system) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddItemToArray(c->messages, m);
        if (!m || !cJSON_AddStringToObject(m, "role", "system") || !cJSON_AddStringToObject(m, "content", system))
            return slm_err_set(err, SLM_ENOMEM, "out of memory");
    }
    if (msgs) {
        for (const cJSON *x = msgs->child; x; x = x->next) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddItemToArray(c->messages, m);
            if (!m || !cJSON_AddStringToObject(m, "role", cJSON_GetObjectItemCaseSensitive(x, "role")->valuestring) ||
                !cJSON_AddStringToObject(m, "content", cJSON_GetObjectItemCaseSensitive(x, "content")->valuestring))
                return slm_err_set(err, SLM_ENOMEM, "out of memory");
        }
    } else {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddItemToArray(c->messages, m);
        if (!m || !cJSON_AddStringToObject(m, "role", "user") || !cJSON_AddStringToObject(m, "content", prompt->valuestring))
            return slm_err_set(err, SLM_ENOMEM, "out of memory");
    }
    if (!(c->input = render_input(c->messages))) return slm_err_set(err, SLM_ENOMEM, "out of memory");

    cJSON *exp = cJSON_DetachItemFromObjectCaseSensitive(o, "expected");
    c->expected = exp;

    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(o, "tags");
    if (tags) {
        if (cJSON_IsString(tags)) {
            c->tags = slm_calloc(1, sizeof *c->tags);
            if (!c->tags || !(c->tags[0] = slm_strdup(tags->valuestring))) return slm_err_set(err, SLM_ENOMEM, "out of memory");
            c->n_tags = 1;
        } else if (cJSON_IsArray(tags)) {
            int n = cJSON_GetArraySize(tags);
            c->tags = n ? slm_calloc((size_t)n, sizeof *c->tags) : NULL;
            if (n && !c->tags) return slm_err_set(err, SLM_ENOMEM, "out of memory");
            for (const cJSON *t = tags->child; t; t = t->next) {
                if (!cJSON_IsString(t) || !t->valuestring[0])
                    return slm_err_set(err, SLM_EINVAL, "%s: tags: must be non-empty strings", where);
                if (!(c->tags[c->n_tags++] = slm_strdup(t->valuestring))) return slm_err_set(err, SLM_ENOMEM, "out of memory");
            }
        } else {
            return slm_err_set(err, SLM_EINVAL, "%s: tags: must be an array of strings", where);
        }
    }

    const cJSON *params = cJSON_GetObjectItemCaseSensitive(o, "params");
    c->params = cJSON_Duplicate(s->params, true);
    if (!c->params) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    if (params) {
        int rc = slm_eval_params_check(params, where, err);
        if (rc) return rc;
        for (const cJSON *v = params->child; v; v = v->next) {
            cJSON *d = cJSON_Duplicate(v, true);
            if (!d) return slm_err_set(err, SLM_ENOMEM, "out of memory");
            if (cJSON_GetObjectItemCaseSensitive(c->params, v->string))
                cJSON_ReplaceItemInObjectCaseSensitive(c->params, v->string, d);
            else
                cJSON_AddItemToObject(c->params, v->string, d);
        }
    }

    const cJSON *scorer = cJSON_GetObjectItemCaseSensitive(o, "scorer");
    return add_scorer(L, scorer ? scorer : L->scorer, where, &c->scorer, &c->scorer_spec);
}

static int parse_prices(slm_eval_suite *s, const cJSON *p, const char *where, slm_err *err) {
    if (!cJSON_IsObject(p)) return slm_err_set(err, SLM_EINVAL, "%s: prices: must be an object", where);
    int n = cJSON_GetArraySize(p);
    s->prices = n ? slm_calloc((size_t)n, sizeof *s->prices) : NULL;
    if (n && !s->prices) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    for (const cJSON *v = p->child; v; v = v->next) {
        double in, out;
        const cJSON *a = cJSON_GetArrayItem(v, 0), *b = cJSON_GetArrayItem(v, 1);
        if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2 && cJSON_IsNumber(a) && cJSON_IsNumber(b)) {
            in = a->valuedouble;
            out = b->valuedouble;
        } else if (cJSON_IsObject(v) && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(v, "in")) &&
                   cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(v, "out"))) {
            in = cJSON_GetObjectItemCaseSensitive(v, "in")->valuedouble;
            out = cJSON_GetObjectItemCaseSensitive(v, "out")->valuedouble;
        } else {
            return slm_err_set(err, SLM_EINVAL, "%s: prices.%s: must be [in_per_M, out_per_M] or {\"in\", \"out\"}", where, v->string);
        }
        if (in < 0 || out < 0) return slm_err_set(err, SLM_EINVAL, "%s: prices.%s: must not be negative", where, v->string);
        slm_eval_price *pr = &s->prices[s->n_prices];
        if (!(pr->name = slm_strdup(v->string))) return slm_err_set(err, SLM_ENOMEM, "out of memory");
        pr->in_per_m = in;
        pr->out_per_m = out;
        s->n_prices++;
    }
    return 0;
}

static char *dup_or_null(const cJSON *v) { return cJSON_IsString(v) ? slm_strdup(v->valuestring) : NULL; }

/* The header object (the value of "suite", or the header file's object). */
static int parse_header(loader *L, const cJSON *h, const char *where) {
    slm_eval_suite *s = L->s;
    slm_err *err = L->err;
    if (!cJSON_IsObject(h)) return slm_err_set(err, SLM_EINVAL, "%s: suite: must be an object", where);
    static const char *const keys[] = { "name", "description", "scorer", "system", "params", "prices", "cases", "version", NULL };
    for (const cJSON *v = h->child; v; v = v->next) {
        bool known = false;
        for (int i = 0; keys[i]; i++) known |= !strcmp(v->string, keys[i]);
        if (!known)
            return slm_err_set(err, SLM_EINVAL, "%s: suite: unknown key '%s' (name, description, scorer, system, params, prices, cases)",
                               where, v->string);
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(h, "name");
    if (name && (!cJSON_IsString(name) || !name->valuestring[0]))
        return slm_err_set(err, SLM_EINVAL, "%s: suite.name: must be a non-empty string", where);
    if (name) {
        slm_free(s->name);
        if (!(s->name = slm_strdup(name->valuestring))) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(h, "description");
    const cJSON *sys = cJSON_GetObjectItemCaseSensitive(h, "system");
    if ((d && !cJSON_IsString(d)) || (sys && !cJSON_IsString(sys)))
        return slm_err_set(err, SLM_EINVAL, "%s: suite.%s: must be a string", where, d && !cJSON_IsString(d) ? "description" : "system");
    if ((d && !(s->description = dup_or_null(d))) || (sys && !(s->system = dup_or_null(sys))))
        return slm_err_set(err, SLM_ENOMEM, "out of memory");
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(h, "scorer");
    if (sc) L->scorer = sc;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(h, "params");
    if (params) {
        char w[600];
        snprintf(w, sizeof w, "%s: suite", where);
        int rc = slm_eval_params_check(params, w, err);
        if (rc) return rc;
        cJSON_Delete(s->params);
        if (!(s->params = cJSON_Duplicate(params, true))) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    }
    const cJSON *prices = cJSON_GetObjectItemCaseSensitive(h, "prices");
    return prices ? parse_prices(s, prices, where, err) : 0;
}

static char *base_name(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    const char *dot = strrchr(b, '.');
    if (dot && dot != b) n = (size_t)(dot - b);
    return slm_strndup(b, n);
}

static int parse_cases(loader *L, char *text, size_t len, bool header_allowed, cJSON **hdr_keep) {
    slm_eval_suite *s = L->s;
    slm_err *err = L->err;
    int cap = 0, line = 0;
    char *p = text, *end = text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        line++;
        if (le > p && le[-1] == '\r') le[-1] = 0;
        *le = 0;
        char *q = p, *ls = p;
        p = nl ? nl + 1 : end;
        while (*q == ' ' || *q == '\t') q++;
        if (!*q) continue;
        const char *perr = NULL;
        cJSON *o = cJSON_ParseWithOpts(q, &perr, true);
        if (!o) {
            return slm_err_set(err, SLM_EFORMAT, "%s:%d: not valid JSON near column %ld", L->file, line,
                               perr ? (long)(perr - ls) + 1 : 1L);
        }
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            return slm_err_set(err, SLM_EINVAL, "%s:%d: each line must be a JSON object", L->file, line);
        }
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "suite");
        if (h) {
            if (!header_allowed || s->n_cases > 0) {
                cJSON_Delete(o);
                return slm_err_set(err, SLM_EINVAL, "%s:%d: the suite header must be the first line", L->file, line);
            }
            header_allowed = false;
            char where[600];
            snprintf(where, sizeof where, "%s:%d", L->file, line);
            int rc = parse_header(L, h, where);
            if (rc) { cJSON_Delete(o); return rc; }
            *hdr_keep = o;    /* keeps L->scorer alive */
            continue;
        }
        header_allowed = false;
        if (s->n_cases == cap) {
            int nc = cap ? cap * 2 : 64;
            slm_eval_case *ncs = slm_realloc(s->cases, (size_t)nc * sizeof *ncs);
            if (!ncs) { cJSON_Delete(o); return slm_err_set(err, SLM_ENOMEM, "out of memory"); }
            s->cases = ncs;
            cap = nc;
        }
        slm_eval_case *c = &s->cases[s->n_cases++];
        memset(c, 0, sizeof *c);
        int rc = parse_case(L, o, line, c);
        cJSON_Delete(o);
        if (rc) return rc;
        for (int i = 0; i < s->n_cases - 1; i++)
            if (!strcmp(s->cases[i].id, c->id))
                return slm_err_set(err, SLM_EINVAL, "%s:%d: id '%s' repeats line %d", L->file, line, c->id, s->cases[i].line);
    }
    if (s->n_cases == 0) return slm_err_set(err, SLM_EINVAL, "%s: no cases", L->file);
    return 0;
}

int slm_eval_suite_load(const char *path, slm_eval_suite **out, slm_err *err) {
    *out = NULL;
    size_t len = 0, clen = 0;
    char *text = read_all(path, &len, err), *ctext = NULL, *cpath = NULL;
    if (!text) return err ? err->code : SLM_EIO;
    int rc = SLM_ENOMEM;
    cJSON *hfile = NULL, *hline = NULL;
    slm_eval_suite *s = slm_calloc(1, sizeof *s);
    loader L = { .s = s, .file = path, .err = err };
    cJSON *exact = cJSON_CreateString("exact");
    if (!s || !exact || !(s->path = slm_strdup(path)) || !(s->name = base_name(path)) || !(s->params = cJSON_CreateObject())) {
        rc = slm_err_set(err, SLM_ENOMEM, "out of memory");
        goto fail;
    }
    L.scorer = exact;
    /* a header file is one JSON object with "cases"; a JSONL file is not */
    hfile = cJSON_Parse(text);
    const cJSON *cases = hfile ? cJSON_GetObjectItemCaseSensitive(hfile, "cases") : NULL;
    if (cJSON_IsObject(hfile) && cases) {
        if (!cJSON_IsString(cases) || !cases->valuestring[0]) {
            rc = slm_err_set(err, SLM_EINVAL, "%s: cases: must be the path of a JSONL file", path);
            goto fail;
        }
        const cJSON *inner = cJSON_GetObjectItemCaseSensitive(hfile, "suite");
        if ((rc = parse_header(&L, inner ? inner : hfile, path))) goto fail;
        const char *slash = strrchr(path, '/');
        size_t dl = cases->valuestring[0] == '/' || !slash ? 0 : (size_t)(slash - path + 1);
        if (!(cpath = slm_malloc(dl + strlen(cases->valuestring) + 1))) goto fail_oom;
        memcpy(cpath, path, dl);
        strcpy(cpath + dl, cases->valuestring);
        if (!(ctext = read_all(cpath, &clen, err))) { rc = err ? err->code : SLM_EIO; goto fail; }
        uint64_t h = slm_eval_fnv1a(slm_eval_fnv1a(SLM_FNV_BASIS, text, len), ctext, clen);
        snprintf(s->hash, sizeof s->hash, "%016llx", (unsigned long long)h);
        L.file = cpath;
        if ((rc = parse_cases(&L, ctext, clen, false, &hline))) goto fail;
    } else {
        snprintf(s->hash, sizeof s->hash, "%016llx", (unsigned long long)slm_eval_fnv1a(SLM_FNV_BASIS, text, len));
        if ((rc = parse_cases(&L, text, len, true, &hline))) goto fail;
    }
    cJSON_Delete(hline);
    cJSON_Delete(hfile);
    cJSON_Delete(exact);
    slm_free(text);
    slm_free(ctext);
    slm_free(cpath);
    *out = s;
    return 0;
fail_oom:
    rc = slm_err_set(err, SLM_ENOMEM, "out of memory");
fail:
    cJSON_Delete(hline);
    cJSON_Delete(hfile);
    cJSON_Delete(exact);
    slm_free(text);
    slm_free(ctext);
    slm_free(cpath);
    slm_eval_suite_free(s);
    return rc;
}

static void case_clear(slm_eval_case *c) {
    slm_free(c->id);
    cJSON_Delete(c->messages);
    slm_free(c->input);
    cJSON_Delete(c->expected);
    cJSON_Delete(c->params);
    slm_free(c->scorer_spec);
    for (int i = 0; i < c->n_tags; i++) slm_free(c->tags[i]);
    slm_free(c->tags);
    memset(c, 0, sizeof *c);
}

void slm_eval_suite_free(slm_eval_suite *s) {
    if (!s) return;
    for (int i = 0; i < s->n_cases; i++) case_clear(&s->cases[i]);
    slm_free(s->cases);
    for (int i = 0; i < s->n_scorers; i++) {
        slm_eval_scorer_free(s->scorers[i]);
        slm_free(s->scorer_keys[i]);
    }
    slm_free(s->scorers);
    slm_free(s->scorer_keys);
    for (int i = 0; i < s->n_prices; i++) slm_free(s->prices[i].name);
    slm_free(s->prices);
    cJSON_Delete(s->params);
    slm_free(s->path);
    slm_free(s->name);
    slm_free(s->description);
    slm_free(s->system);
    slm_free(s);
}

void slm_eval_suite_filter(slm_eval_suite *s, const char *const *tags, int n_tags, int limit) {
    int kept = 0;
    for (int i = 0; i < s->n_cases; i++) {
        slm_eval_case *c = &s->cases[i];
        bool keep = n_tags == 0;
        for (int t = 0; t < n_tags && !keep; t++)
            for (int k = 0; k < c->n_tags && !keep; k++) keep = !strcmp(tags[t], c->tags[k]);
        if (keep && (limit <= 0 || kept < limit)) {
            if (kept != i) s->cases[kept] = *c;
            kept++;
        } else {
            case_clear(c);
        }
    }
    s->n_cases = kept;
}

bool slm_eval_suite_price(const slm_eval_suite *s, const char *target, const char *model, double *in_per_m,
                          double *out_per_m) {
    for (int pass = 0; pass < 2; pass++) {
        const char *key = pass ? model : target;
        if (!key) continue;
        for (int i = 0; i < s->n_prices; i++)
            if (!strcmp(s->prices[i].name, key)) {
                *in_per_m = s->prices[i].in_per_m;
                *out_per_m = s->prices[i].out_per_m;
                return true;
            }
    }
    return false;
}

/* ---- the example of `slm eval init` ------------------------------------------------ */

static const char EXAMPLE[] =
    "{\"suite\": {\"name\": \"example\", \"description\": \"One case per common scorer; edit, then: slm eval run example.jsonl --target NAME=URL_OR_GGUF\", "
    "\"scorer\": \"exact\", \"system\": \"Answer briefly.\", \"params\": {\"temperature\": 0, \"max_tokens\": 64}, "
    "\"prices\": {\"gpt-4o-mini\": [0.15, 0.6]}}}\n"
    "{\"id\": \"capital\", \"prompt\": \"What is the capital of France? One word.\", \"expected\": \"Paris\", "
    "\"scorer\": {\"name\": \"exact\", \"normalize\": [\"case\", \"punctuation\"]}, \"tags\": [\"geo\"]}\n"
    "{\"id\": \"colors\", \"prompt\": \"Name the three primary colours of light.\", \"expected\": [\"red\", \"green\", \"blue\"], "
    "\"scorer\": {\"name\": \"contains\", \"normalize\": \"case\"}, \"tags\": [\"science\"]}\n"
    "{\"id\": \"year\", \"prompt\": \"In which year did Apollo 11 land on the Moon?\", \"expected\": \"\\\\b1969\\\\b\", "
    "\"scorer\": \"regex\", \"tags\": [\"history\"]}\n"
    "{\"id\": \"sentiment\", \"messages\": [{\"role\": \"user\", \"content\": \"Sentiment of: 'I loved every minute.' "
    "Answer positive, negative or neutral.\"}], \"expected\": \"positive\", "
    "\"scorer\": {\"name\": \"label\", \"labels\": [\"positive\", \"negative\", \"neutral\"]}, \"tags\": [\"classify\"]}\n"
    "{\"id\": \"sum\", \"prompt\": \"What is 17 + 25? Reply with the number.\", \"expected\": 42, "
    "\"scorer\": \"numeric\", \"tags\": [\"math\"], \"params\": {\"max_tokens\": 16}}\n"
    "{\"id\": \"contact\", \"prompt\": \"Extract name and email as JSON {\\\"name\\\", \\\"email\\\"}: "
    "'Write to Ada Lovelace at ada@example.org.'\", \"expected\": {\"name\": \"Ada Lovelace\", \"email\": \"ada@example.org\"}, "
    "\"scorer\": \"fields\", \"tags\": [\"extract\"], \"params\": {\"response_format\": \"json_object\"}}\n"
    "{\"id\": \"json\", \"prompt\": \"Reply with a JSON array of three prime numbers and nothing else.\", "
    "\"scorer\": \"json_valid\", \"tags\": [\"format\"]}\n"
    "{\"id\": \"summary\", \"prompt\": \"Summarise in one sentence: The cat sat on the mat all afternoon, "
    "ignoring the dog.\", \"expected\": \"The cat sat on the mat all afternoon ignoring the dog.\", "
    "\"scorer\": {\"name\": \"rouge_l\", \"threshold\": 0.4}, \"tags\": [\"summarise\"]}\n";

int slm_eval_suite_write_example(const char *dir, char **path_out, slm_err *err) {
    if (path_out) *path_out = NULL;
    if (mkdir(dir, 0777) && errno != EEXIST) return slm_err_set(err, SLM_EIO, "%s: %s", dir, strerror(errno));
    size_t n = strlen(dir) + 32;
    char *path = slm_malloc(n);
    if (!path) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    snprintf(path, n, "%s/example.jsonl", dir);
    FILE *f = fopen(path, "wx");
    if (!f) {
        int rc = errno == EEXIST ? slm_err_set(err, SLM_EINVAL, "%s exists; not overwriting it", path)
                                 : slm_err_set(err, SLM_EIO, "%s: %s", path, strerror(errno));
        slm_free(path);
        return rc;
    }
    bool ok = fwrite(EXAMPLE, 1, sizeof EXAMPLE - 1, f) == sizeof EXAMPLE - 1;
    ok &= fclose(f) == 0;
    if (!ok) {
        slm_free(path);
        return slm_err_set(err, SLM_EIO, "cannot write the example suite");
    }
    if (path_out) *path_out = path;
    else slm_free(path);
    return 0;
}
