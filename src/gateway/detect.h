/*
 * detect.h — the private-data detector. Finds e-mail addresses, phone
 * numbers, payment card numbers (Luhn-checked), IBANs (mod-97-checked, with
 * the country's length when known), US social security numbers, IPv4/IPv6
 * addresses and API-key-like secrets (known prefixes, or a key=value whose
 * value has high entropy). Regular expressions (PCRE2, JIT when available)
 * find candidates; checksums and validators reject look-alikes, which is
 * what keeps order numbers and dates from being called card numbers.
 *
 * A detector is immutable after creation and may be shared by threads.
 */
#ifndef SLM_GATEWAY_DETECT_H
#define SLM_GATEWAY_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include "slm/slm.h"

typedef enum slm_gw_pd_kind {
    SLM_GW_PD_EMAIL, SLM_GW_PD_CARD, SLM_GW_PD_IBAN, SLM_GW_PD_SSN,
    SLM_GW_PD_SECRET, SLM_GW_PD_IP, SLM_GW_PD_PHONE, SLM_GW_PD_N_KINDS
} slm_gw_pd_kind;

typedef struct slm_gw_pd_match {
    slm_gw_pd_kind kind;
    size_t start, end;        /* byte range [start, end) in the scanned text */
} slm_gw_pd_match;

typedef struct slm_gw_pd_hits {
    slm_gw_pd_match *v;       /* sorted by start, never overlapping          */
    int n, cap;
    unsigned mask;            /* bit k: kind k was found                     */
} slm_gw_pd_hits;

typedef struct slm_gw_detector slm_gw_detector;

int  slm_gw_detector_new(slm_gw_detector **out, slm_err *err);
void slm_gw_detector_free(slm_gw_detector *d);

/* Scans len bytes and appends what it finds to hits (which may already hold
 * matches of other texts: call slm_gw_pd_hits_reset between texts when the
 * spans matter). Returns 0 or SLM_ENOMEM. */
int  slm_gw_detect(const slm_gw_detector *d, const char *text, size_t len, slm_gw_pd_hits *hits);
void slm_gw_pd_hits_reset(slm_gw_pd_hits *h);   /* keeps mask and memory */
void slm_gw_pd_hits_free(slm_gw_pd_hits *h);

/* Copies text with every match replaced by "[REDACTED_KIND]"; *out is
 * NUL-terminated, owned by the caller (slm_free). ORs the kinds into *mask. */
int slm_gw_redact(const slm_gw_detector *d, const char *text, size_t len, char **out, unsigned *mask);

const char *slm_gw_pd_kind_name(slm_gw_pd_kind k);   /* "email", "card", …   */

/* The checks, exposed for tests. Both ignore spaces and dashes. */
bool slm_gw_luhn_ok(const char *s, size_t n);
bool slm_gw_iban_ok(const char *s, size_t n);

#endif
