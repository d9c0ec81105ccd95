/*
 * sample.c — turning one row of logits into one token.
 *
 * The chain follows llama.cpp's default sampler chain (common/common.h,
 * `samplers`): logit bias → penalties → top-k → top-p → min-p → temperature
 * → draw. Like llama.cpp, top-p and min-p judge the probabilities at
 * temperature 1 and the temperature only shapes the final draw among the
 * tokens they kept, so the kept set does not depend on the temperature.
 * temp <= 0 (or top_k == 1) is greedy: the argmax, ties to the lowest id.
 *
 * Penalties look at the last repeat_last_n accepted tokens, kept in a ring
 * with a per-token count (updated on accept, so a sample never rescans the
 * history). Repeat penalty is llama.cpp's: a positive logit is divided by
 * it, a non-positive one multiplied. Frequency and presence are OpenAI's:
 * logit -= count * frequency + (count > 0) * presence.
 *
 * Cost for a vocabulary of n: one pass to sanitise and find the argmax; with
 * top_k = k a bounded min-heap selects the best k in O(n log k), then the k
 * are sorted. With top_k off the candidates stay unsorted: min-p is a linear
 * filter, and top-p heapifies the survivors (O(n)) and pops only until the
 * wanted mass is reached, so a full sort never happens.
 *
 * Bad numbers: NaN logits count as -inf (never chosen), +inf as the largest
 * finite float (so several +inf share the mass). If no token has a finite
 * logit, token 0 is returned — the same answer greedy argmax with
 * lowest-id ties gives. All candidate memory is allocated once in
 * slm_sampler_new; sampling does not allocate.
 */
#include "sample/rng.h"
#include "util/alloc.h"

#include <float.h>
#include <math.h>
#include <string.h>

typedef struct cand {
    int32_t id;      /* token id                                         */
    float   logit;   /* logit after bias and penalties                   */
    double  w;       /* exp(logit - max) at temperature 1 (top-p)        */
} cand;

struct slm_sampler {
    slm_sample_params params;  /* copy; params.logit_bias points at bias     */
    int32_t n_vocab;           /* logits per row                            */
    slm_logit_bias *bias;      /* own copy of the caller's logit bias        */
    int32_t n_bias;            /* entries in bias                           */
    int32_t *ring;             /* last accepted tokens (repeat_last_n slots) */
    int32_t  ring_cap;         /* = repeat_last_n; 0: penalties off         */
    int32_t  ring_len;         /* tokens held, <= ring_cap                   */
    int32_t  ring_head;        /* next slot to write (the oldest when full)  */
    int32_t *count;            /* n_vocab occurrences inside the window      */
    cand    *cand;             /* n_vocab candidate slots                    */
    slm_rng  rng;              /* seeded from params.seed                    */
};

slm_sample_params slm_sample_default_params(void) {
    slm_sample_params p;
    memset(&p, 0, sizeof p);
    p.temp              = 0.8f;
    p.top_k             = 40;
    p.top_p             = 0.95f;
    p.min_p             = 0.05f;
    p.repeat_penalty    = 1.0f;
    p.repeat_last_n     = 64;
    p.frequency_penalty = 0.0f;
    p.presence_penalty  = 0.0f;
    p.seed              = 0;
    p.logit_bias        = NULL;
    p.n_logit_bias      = 0;
    return p;
}

/* Checks every field a request can set; 0 or SLM_EINVAL. */
static int check_params(const slm_sample_params *p, int32_t n_vocab) {
    if (!isfinite(p->temp)) return SLM_EINVAL;
    if (p->top_k < 0) return SLM_EINVAL;
    if (isnan(p->top_p) || p->top_p < 0.0f) return SLM_EINVAL;
    if (isnan(p->min_p) || p->min_p < 0.0f || p->min_p > 1.0f) return SLM_EINVAL;
    if (!isfinite(p->repeat_penalty) || p->repeat_penalty <= 0.0f) return SLM_EINVAL;
    if (p->repeat_last_n < 0) return SLM_EINVAL;
    if (!isfinite(p->frequency_penalty) || !isfinite(p->presence_penalty)) return SLM_EINVAL;
    if (p->n_logit_bias < 0 || (p->n_logit_bias > 0 && !p->logit_bias)) return SLM_EINVAL;
    for (int32_t i = 0; i < p->n_logit_bias; i++) {
        const slm_logit_bias *b = &p->logit_bias[i];
        if (b->token < 0 || b->token >= n_vocab || isnan(b->bias)) return SLM_EINVAL;
    }
    return 0;
}

/* Creates a sampler for rows of n_vocab logits. p NULL means the defaults.
 * The logit-bias array is copied, so the caller's may go away. Returns
 * SLM_EINVAL for a bad field (NaN or out-of-range value, bias token outside
 * the vocabulary, negative repeat_last_n), SLM_ENOMEM when allocation fails.
 * *out is owned by the caller (slm_sampler_free). */
int slm_sampler_new(const slm_sample_params *p, int32_t n_vocab, slm_sampler **out) {
    if (!out) return SLM_EINVAL;
    *out = NULL;
    slm_sample_params def = slm_sample_default_params();
    if (!p) p = &def;
    if (n_vocab <= 0 || check_params(p, n_vocab) != 0) return SLM_EINVAL;

    slm_sampler *s = slm_calloc(1, sizeof *s);
    if (!s) return SLM_ENOMEM;
    s->params  = *p;
    s->n_vocab = n_vocab;
    s->cand    = slm_calloc((size_t)n_vocab, sizeof *s->cand);
    if (!s->cand) goto fail;
    if (p->n_logit_bias > 0) {
        s->bias = slm_malloc((size_t)p->n_logit_bias * sizeof *s->bias);
        if (!s->bias) goto fail;
        memcpy(s->bias, p->logit_bias, (size_t)p->n_logit_bias * sizeof *s->bias);
        s->n_bias = p->n_logit_bias;
    }
    s->params.logit_bias = s->bias;
    if (p->repeat_last_n > 0) {
        s->ring  = slm_calloc((size_t)p->repeat_last_n, sizeof *s->ring);
        s->count = slm_calloc((size_t)n_vocab, sizeof *s->count);
        if (!s->ring || !s->count) goto fail;
        s->ring_cap = p->repeat_last_n;
    }
    slm_rng_seed(&s->rng, p->seed);
    *out = s;
    return 0;
fail:
    slm_sampler_free(s);
    return SLM_ENOMEM;
}

void slm_sampler_free(slm_sampler *s) {
    if (!s) return;
    slm_free(s->cand);
    slm_free(s->bias);
    slm_free(s->ring);
    slm_free(s->count);
    slm_free(s);
}

/* Pushes token into the penalty window, evicting the oldest when full.
 * Tokens outside [0, n_vocab) are ignored. */
void slm_sampler_accept(slm_sampler *s, int32_t token) {
    if (!s || s->ring_cap == 0 || token < 0 || token >= s->n_vocab) return;
    if (s->ring_len == s->ring_cap)
        s->count[s->ring[s->ring_head]]--;
    else
        s->ring_len++;
    s->ring[s->ring_head] = token;
    s->count[token]++;
    s->ring_head = (s->ring_head + 1) % s->ring_cap;
}

/* ---- logit preparation ---------------------------------------------------- */

static void apply_bias(const slm_sampler *s, float *logits) {
    for (int32_t i = 0; i < s->n_bias; i++)
        logits[s->bias[i].token] += s->bias[i].bias;
}

/* Penalises each distinct token of the window once. A visited token's count
 * is negated as the "done" mark and restored afterwards, so no extra memory
 * is needed and the cost is O(window). */
static void apply_penalties(slm_sampler *s, float *logits) {
    const float rep  = s->params.repeat_penalty;
    const float freq = s->params.frequency_penalty;
    const float pres = s->params.presence_penalty;
    if (s->ring_len == 0 || (rep == 1.0f && freq == 0.0f && pres == 0.0f)) return;
    for (int32_t i = 0; i < s->ring_len; i++) {
        int32_t t = s->ring[i], c = s->count[t];
        if (c <= 0) continue;           /* already penalised this call */
        float l = logits[t];
        l = l <= 0.0f ? l * rep : l / rep;
        l -= (float)c * freq + pres;     /* c > 0 here: presence applies */
        logits[t] = l;
        s->count[t] = -c;
    }
    for (int32_t i = 0; i < s->ring_len; i++) {
        int32_t t = s->ring[i];
        if (s->count[t] < 0) s->count[t] = -s->count[t];
    }
}

/* NaN -> -inf, +inf -> FLT_MAX, in place. Returns the number of tokens with
 * a finite logit and writes the argmax (lowest id among ties; 0 if none). */
static int32_t sanitize(float *logits, int32_t n, int32_t *argmax) {
    int32_t n_finite = 0, best = 0;
    float best_l = -INFINITY;
    for (int32_t i = 0; i < n; i++) {
        float l = logits[i];
        if (isnan(l)) l = logits[i] = -INFINITY;
        else if (l == INFINITY) l = logits[i] = FLT_MAX;
        if (l > -INFINITY) n_finite++;
        if (l > best_l) { best_l = l; best = i; }
    }
    *argmax = best;
    return n_finite;
}

/* ---- candidate ordering --------------------------------------------------- */

/* a ranks before b: higher logit, then lower id (a total order, so results
 * never depend on the sort algorithm). */
static inline int better(const cand *a, const cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

/* Restores the heap property below slot i of c[0..n). max_heap: the best
 * candidate at the root; otherwise the worst. */
static void sift_down(cand *c, int32_t n, int32_t i, int max_heap) {
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, top = i;
        if (l < n && (max_heap ? better(&c[l], &c[top]) : better(&c[top], &c[l]))) top = l;
        if (r < n && (max_heap ? better(&c[r], &c[top]) : better(&c[top], &c[r]))) top = r;
        if (top == i) return;
        cand tmp = c[i]; c[i] = c[top]; c[top] = tmp;
        i = top;
    }
}

static void sift_up_min(cand *c, int32_t i) {
    while (i > 0) {
        int32_t parent = (i - 1) / 2;
        if (!better(&c[parent], &c[i])) return;   /* parent already worse */
        cand tmp = c[i]; c[i] = c[parent]; c[parent] = tmp;
        i = parent;
    }
}

/* Puts the best k finite tokens into s->cand[0..k), best first. A min-heap
 * of size k holds the best so far; its root is the one to beat. Popping the
 * heap's worst to the back then leaves it sorted best first, in place
 * (qsort could allocate). */
static int32_t select_top_k(slm_sampler *s, const float *logits, int32_t k) {
    cand *c = s->cand;
    int32_t n = 0;
    for (int32_t i = 0; i < s->n_vocab; i++) {
        if (!(logits[i] > -INFINITY)) continue;
        cand x = { i, logits[i], 0.0 };
        if (n < k) {
            c[n] = x;
            sift_up_min(c, n++);
        } else if (better(&x, &c[0])) {
            c[0] = x;
            sift_down(c, n, 0, 0);
        }
    }
    for (int32_t end = n - 1; end > 0; end--) {
        cand tmp = c[0]; c[0] = c[end]; c[end] = tmp;
        sift_down(c, end, 0, 0);
    }
    return n;
}

static int32_t gather_finite(slm_sampler *s, const float *logits) {
    int32_t n = 0;
    for (int32_t i = 0; i < s->n_vocab; i++)
        if (logits[i] > -INFINITY) {
            s->cand[n].id = i;
            s->cand[n].logit = logits[i];
            n++;
        }
    return n;
}

/* Keeps the candidates whose probability is at least min_p times the top
 * one's: logit >= max + log(min_p) (llama.cpp's test). Order is kept. */
static int32_t filter_min_p(cand *c, int32_t n, float max_logit, float min_p) {
    const float min_logit = max_logit + logf(min_p);
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++)
        if (c[i].logit >= min_logit) c[m++] = c[i];
    return m;
}

/* Keeps the smallest best-first prefix whose mass (w / w_sum) reaches top_p,
 * the token that crosses it included; everything when rounding never
 * reaches it. Sorted input is scanned; unsorted input is heapified and
 * popped only as far as needed. The kept prefix ends up best first. */
static int32_t filter_top_p(cand *c, int32_t n, int sorted, double w_sum, double top_p) {
    double cum = 0.0;
    if (sorted) {
        for (int32_t i = 0; i < n; i++) {
            cum += c[i].w / w_sum;
            if (cum >= top_p) return i + 1;
        }
        return n;
    }
    for (int32_t i = n / 2 - 1; i >= 0; i--) sift_down(c, n, i, 1);
    int32_t end = n;                 /* popped ones live in c[end..n) */
    while (end > 0) {
        cand tmp = c[0]; c[0] = c[end - 1]; c[end - 1] = tmp;
        end--;
        sift_down(c, end, 0, 1);
        cum += c[end].w / w_sum;
        if (cum >= top_p) break;
    }
    int32_t kept = n - end;          /* c[end..n) holds them worst .. best */
    for (int32_t i = end, j = n - 1; i < j; i++, j--) {
        cand tmp = c[i]; c[i] = c[j]; c[j] = tmp;
    }
    memmove(c, c + end, (size_t)kept * sizeof *c);
    return kept;
}

/* Draws one of c[0..n) with probability ∝ exp((logit - max) / temp), in
 * double precision; c[i].w is overwritten with the weight. */
static int32_t draw(slm_sampler *s, cand *c, int32_t n, float max_logit, float temp) {
    double total = 0.0;
    for (int32_t i = 0; i < n; i++) {
        c[i].w = exp(((double)c[i].logit - (double)max_logit) / (double)temp);
        total += c[i].w;
    }
    double r = slm_rng_uniform(&s->rng) * total;
    double cum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        cum += c[i].w;
        if (r < cum) return c[i].id;
    }
    return c[n - 1].id;   /* rounding left r at the very top */
}

/* Samples one token. logits (n_vocab values) is modified in place: on
 * return it holds the logits after bias and penalties with NaN made -inf and
 * +inf made FLT_MAX, which is what the choice was made from. Returns the
 * token id, or SLM_EINVAL when s or logits is NULL. */
int32_t slm_sampler_sample(slm_sampler *s, float *logits) {
    if (!s || !logits) return SLM_EINVAL;
    const slm_sample_params *p = &s->params;

    apply_bias(s, logits);
    apply_penalties(s, logits);
    int32_t argmax;
    int32_t n_finite = sanitize(logits, s->n_vocab, &argmax);
    if (n_finite == 0) return 0;
    if (p->temp <= 0.0f || p->top_k == 1 || n_finite == 1) return argmax;

    const float max_logit = logits[argmax];
    int sorted = 0;
    int32_t n;
    if (p->top_k > 0 && p->top_k < n_finite) {
        n = select_top_k(s, logits, p->top_k);
        sorted = 1;
    } else {
        n = gather_finite(s, logits);
    }
    cand *c = s->cand;

    /* top-p's probabilities are normalised over the top-k survivors, before
     * min-p. Both filters keep a best-first prefix and min-p never drops the
     * top token, so running the cheap linear min-p first and then top-p
     * with this denominator keeps exactly what llama.cpp's top-p → min-p
     * order keeps, while top-p then works on far fewer candidates. */
    const int use_top_p = p->top_p < 1.0f;
    double w_sum = 0.0;
    if (use_top_p)
        for (int32_t i = 0; i < n; i++) {
            c[i].w = exp((double)c[i].logit - (double)max_logit);
            w_sum += c[i].w;
        }
    if (p->min_p > 0.0f) n = filter_min_p(c, n, max_logit, p->min_p);
    if (use_top_p) n = filter_top_p(c, n, sorted, w_sum, p->top_p);

    return draw(s, c, n, max_logit, p->temp);
}
