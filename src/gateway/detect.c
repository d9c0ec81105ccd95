/*
 * detect.c — see detect.h. Patterns run in a fixed order (e-mail, card,
 * IBAN, SSN, secret, IP, phone); a later candidate that overlaps an
 * accepted match is skipped, so "192.168.0.1" is an IP and not a phone
 * number, and a card number is not also an IBAN. Each kind has a validator
 * run on the candidate's bytes: Luhn for cards, mod-97 (and the country's
 * IBAN length) for IBANs, inet_pton for IP addresses, digit counts for phone
 * numbers and Shannon entropy for generic secrets.
 */
#include "gateway/detect.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/err.h"

/* One entry per kind, in scan order. */
static const struct {
    slm_gw_pd_kind kind;
    const char *re;
} PATTERNS[] = {
    { SLM_GW_PD_EMAIL, "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}" },
    { SLM_GW_PD_CARD, "(?<![\\d.])(?:\\d[ -]?){12,18}\\d(?![\\d])" },
    { SLM_GW_PD_IBAN, "\\b[A-Z]{2}\\d{2}(?: ?[A-Z0-9]){11,30}\\b" },
    { SLM_GW_PD_SSN, "(?<![\\d-])(?!000|666|9\\d\\d)\\d{3}-(?!00)\\d{2}-(?!0000)\\d{4}(?![\\d-])" },
    { SLM_GW_PD_SECRET,
      "\\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}"
      "|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|glpat-[A-Za-z0-9_-]{20}"
      "|(?i:api[_-]?key|secret|token|passw(?:or)?d|bearer)[\"']?\\s*[:=]?\\s*[\"']?[A-Za-z0-9_\\-/+=.]{16,})" },
    { SLM_GW_PD_IP, "(?<![\\w.])(?:(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(?![\\w]|\\.\\d)"
                    "|(?<![\\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\\w:])" },
    { SLM_GW_PD_PHONE, "(?<![\\w+])(?:\\+\\d{1,3}[ .-]?)?(?:\\(\\d{1,4}\\)[ .-]?)?\\d{2,4}(?:[ .-]?\\d{2,4}){1,4}(?!\\w)" },
};
#define N_PATTERNS (int)(sizeof PATTERNS / sizeof PATTERNS[0])

struct slm_gw_detector {
    pcre2_code *re[N_PATTERNS];
};

static const char *const KIND_NAMES[SLM_GW_PD_N_KINDS] = { "email", "card", "iban", "ssn", "secret", "ip", "phone" };

const char *slm_gw_pd_kind_name(slm_gw_pd_kind k) {
    return (unsigned)k < SLM_GW_PD_N_KINDS ? KIND_NAMES[k] : "unknown";
}

int slm_gw_detector_new(slm_gw_detector **out, slm_err *err) {
    *out = NULL;
    slm_gw_detector *d = slm_calloc(1, sizeof *d);
    if (!d) return slm_err_set(err, SLM_ENOMEM, "out of memory");
    for (int i = 0; i < N_PATTERNS; i++) {
        int code;
        PCRE2_SIZE off;
        d->re[i] = pcre2_compile((PCRE2_SPTR)PATTERNS[i].re, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
        if (!d->re[i]) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(code, msg, sizeof msg);
            slm_gw_detector_free(d);
            return slm_err_set(err, SLM_EINVAL, "detector pattern %s at %zu: %s",
                               slm_gw_pd_kind_name(PATTERNS[i].kind), (size_t)off, (char *)msg);
        }
        pcre2_jit_compile(d->re[i], PCRE2_JIT_COMPLETE); /* best effort */
    }
    *out = d;
    return 0;
}

void slm_gw_detector_free(slm_gw_detector *d) {
    if (!d) return;
    for (int i = 0; i < N_PATTERNS; i++) pcre2_code_free(d->re[i]);
    slm_free(d);
}

/* ---- validators ------------------------------------------------------------ */

static int digits_of(const char *s, size_t n, char *out, int cap) {
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            if (k == cap) return -1;
            out[k++] = s[i];
        } else if (s[i] != ' ' && s[i] != '-' && s[i] != '.' && s[i] != '(' && s[i] != ')' && s[i] != '+') {
            return -1;
        }
    }
    return k;
}

bool slm_gw_luhn_ok(const char *s, size_t n) {
    char d[32];
    int k = digits_of(s, n, d, (int)sizeof d);
    if (k < 13 || k > 19) return false;
    int sum = 0;
    bool all_same = true;
    for (int i = 0; i < k; i++) {
        int v = d[k - 1 - i] - '0';
        if (i & 1) { v *= 2; if (v > 9) v -= 9; }
        sum += v;
        all_same &= d[i] == d[0];
    }
    return sum % 10 == 0 && !all_same;
}

static int iban_country_len(const char *cc) {
    static const char *const T = "AD24AE23AL28AT20AZ28BA20BE16BG22BH22BR29CH21CR22CY28CZ24DE22DK18DO28EE20EG29ES24"
                                 "FI18FO18FR27GB22GE22GI23GL18GR27GT28HR21HU28IE22IL23IS26IT27JO30KW30KZ20LB28LI21"
                                 "LT20LU20LV21MC27MD24ME22MK19MR27MT31MU30NL18NO15PK24PL28PS29PT25QA29RO24RS22SA24"
                                 "SE24SI19SK24SM27TN24TR26UA29VG24XK20";
    for (const char *p = T; *p; p += 4)
        if (p[0] == cc[0] && p[1] == cc[1]) return (p[2] - '0') * 10 + (p[3] - '0');
    return 0;
}

bool slm_gw_iban_ok(const char *s, size_t n) {
    char c[40];
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == ' ' || ch == '-') continue;
        if (ch >= 'a' && ch <= 'z') ch = (char)(ch - 'a' + 'A');
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) || k == (int)sizeof c) return false;
        c[k++] = ch;
    }
    if (k < 15 || k > 34) return false;
    if (c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' || c[2] > '9' || c[3] > '9') return false;
    int want = iban_country_len(c);
    if (want && want != k) return false;
    unsigned rem = 0;
    for (int i = 0; i < k; i++) {
        char ch = c[(i + 4) % k];   /* move the first four characters to the end */
        if (ch >= '0' && ch <= '9') rem = (rem * 10 + (unsigned)(ch - '0')) % 97;
        else rem = (rem * 100 + (unsigned)(ch - 'A' + 10)) % 97;
    }
    return rem == 1;
}

static double entropy_bits(const char *s, size_t n) {
    int cnt[256] = { 0 };
    for (size_t i = 0; i < n; i++) cnt[(unsigned char)s[i]]++;
    double h = 0;
    for (int i = 0; i < 256; i++)
        if (cnt[i]) { double p = (double)cnt[i] / (double)n; h -= p * log2(p); }
    return h;
}

/* Checks a candidate; may shrink *end (IBAN written with a trailing word). */
static bool valid(slm_gw_pd_kind kind, const char *t, size_t s, size_t *end) {
    const char *p = t + s;
    size_t n = *end - s;
    char buf[64];
    switch (kind) {
    case SLM_GW_PD_CARD: return slm_gw_luhn_ok(p, n);
    case SLM_GW_PD_IBAN:
        /* the pattern is greedy: also try ending at each earlier space */
        for (size_t e = n; e >= 15; e--) {
            if (e < n && p[e] != ' ') continue;
            if (slm_gw_iban_ok(p, e)) { *end = s + e; return true; }
        }
        return false;
    case SLM_GW_PD_IP:
        if (n >= sizeof buf) return false;
        memcpy(buf, p, n);
        buf[n] = 0;
        {
            unsigned char addr[16];
            if (strchr(buf, '.')) return inet_pton(AF_INET, buf, addr) == 1;
            int hex = 0;
            for (size_t i = 0; i < n; i++) hex += buf[i] != ':';
            return hex >= 2 && inet_pton(AF_INET6, buf, addr) == 1;
        }
    case SLM_GW_PD_PHONE: {
        int k = digits_of(p, n, buf, (int)sizeof buf);
        if (k > 15) return false;
        return k >= 10 || (p[0] == '+' && k >= 8);
    }
    case SLM_GW_PD_SECRET: {
        /* known prefixes pass; a key=value needs a random-looking value */
        if (!strncmp(p, "sk-", 3) || !strncmp(p, "AKIA", 4) || (p[0] == 'g' && p[1] == 'h') ||
            !strncmp(p, "xox", 3) || !strncmp(p, "AIza", 4) || !strncmp(p, "glpat-", 6))
            return true;
        size_t v = n;
        while (v > 0 && !strchr(" :=\"'", p[v - 1])) v--;
        return n - v >= 16 && entropy_bits(p + v, n - v) >= 3.5;
    }
    default: return true;
    }
}

static int add_hit(slm_gw_pd_hits *h, slm_gw_pd_kind kind, size_t s, size_t e) {
    for (int i = 0; i < h->n; i++)
        if (s < h->v[i].end && h->v[i].start < e) return 1;   /* overlaps an earlier kind */
    if (h->n == h->cap) {
        int nc = h->cap ? h->cap * 2 : 8;
        slm_gw_pd_match *nv = slm_realloc(h->v, (size_t)nc * sizeof *nv);
        if (!nv) return SLM_ENOMEM;
        h->v = nv;
        h->cap = nc;
    }
    int i = h->n++;
    while (i > 0 && h->v[i - 1].start > s) { h->v[i] = h->v[i - 1]; i--; }
    h->v[i] = (slm_gw_pd_match){ kind, s, e };
    h->mask |= 1u << kind;
    return 0;
}

int slm_gw_detect(const slm_gw_detector *d, const char *text, size_t len, slm_gw_pd_hits *hits) {
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    if (!md) return SLM_ENOMEM;
    int rc = 0;
    for (int i = 0; i < N_PATTERNS && rc == 0; i++) {
        size_t off = 0;
        while (off <= len) {
            int r = pcre2_match(d->re[i], (PCRE2_SPTR)text, len, off, 0, md, NULL);
            if (r < 0) break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t s = ov[0], e = ov[1];
            if (e == s) { off = e + 1; continue; }
            if (valid(PATTERNS[i].kind, text, s, &e) && add_hit(hits, PATTERNS[i].kind, s, e) < 0) {
                rc = SLM_ENOMEM;
                break;
            }
            off = e;
        }
    }
    pcre2_match_data_free(md);
    return rc;
}

void slm_gw_pd_hits_reset(slm_gw_pd_hits *h) { h->n = 0; }

void slm_gw_pd_hits_free(slm_gw_pd_hits *h) {
    slm_free(h->v);
    *h = (slm_gw_pd_hits){ 0 };
}

int slm_gw_redact(const slm_gw_detector *d, const char *text, size_t len, char **out, unsigned *mask) {
    slm_gw_pd_hits h = { 0 };
    *out = NULL;
    int rc = slm_gw_detect(d, text, len, &h);
    if (rc) { slm_gw_pd_hits_free(&h); return rc; }
    size_t cap = len + 1;
    for (int i = 0; i < h.n; i++) cap += 24;
    char *o = slm_malloc(cap), *w = o;
    if (!o) { slm_gw_pd_hits_free(&h); return SLM_ENOMEM; }
    size_t pos = 0;
    for (int i = 0; i < h.n; i++) {
        memcpy(w, text + pos, h.v[i].start - pos);
        w += h.v[i].start - pos;
        w += sprintf(w, "[REDACTED_%s]", slm_gw_pd_kind_name(h.v[i].kind));
        pos = h.v[i].end;
    }
    memcpy(w, text + pos, len - pos);
    w[len - pos] = 0;
    if (mask) *mask |= h.mask;
    slm_gw_pd_hits_free(&h);
    *out = o;
    return 0;
}
