/*
 * test_gateway_detect.c — the private-data detector: known positives of
 * every kind, look-alikes that the checksums must reject (Luhn, IBAN mod-97),
 * overlaps resolved in favour of the stronger kind, and redaction.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "gateway/detect.h"
#include "util/alloc.h"

static slm_gw_detector *D;

static void setup(void) {
    slm_err err = { 0 };
    cr_assert_eq(slm_gw_detector_new(&D, &err), 0, "%s", err.msg);
}
static void teardown(void) { slm_gw_detector_free(D); }

/* The kinds found in text, as a mask. */
static unsigned scan(const char *text) {
    slm_gw_pd_hits h = { 0 };
    cr_assert_eq(slm_gw_detect(D, text, strlen(text), &h), 0);
    unsigned m = h.mask;
    slm_gw_pd_hits_free(&h);
    return m;
}

#define BIT(k) (1u << SLM_GW_PD_##k)

TestSuite(gw_detect, .init = setup, .fini = teardown);

Test(gw_detect, luhn_and_iban_checks) {
    cr_assert(slm_gw_luhn_ok("4111 1111 1111 1111", 19));
    cr_assert(slm_gw_luhn_ok("5500-0000-0000-0004", 19));
    cr_assert(slm_gw_luhn_ok("378282246310005", 15));          /* Amex test number */
    cr_assert(!slm_gw_luhn_ok("4111 1111 1111 1112", 19));
    cr_assert(!slm_gw_luhn_ok("0000000000000000", 16));        /* all one digit */
    cr_assert(!slm_gw_luhn_ok("123456789012", 12));            /* too short */
    cr_assert(slm_gw_iban_ok("DE89 3704 0044 0532 0130 00", 27));
    cr_assert(slm_gw_iban_ok("GB82WEST12345698765432", 22));
    cr_assert(slm_gw_iban_ok("FR1420041010050500013M02606", 27));
    cr_assert(!slm_gw_iban_ok("GB82WEST12345698765433", 22));  /* check digits wrong */
    cr_assert(!slm_gw_iban_ok("DE89370400440532013000123", 25)); /* wrong length for DE */
    cr_assert(!slm_gw_iban_ok("XX", 2));
}

Test(gw_detect, positives_of_every_kind) {
    cr_assert_eq(scan("write to alice.smith+tag@mail.example.co.uk please"), BIT(EMAIL));
    cr_assert_eq(scan("my card is 4111 1111 1111 1111, exp 12/29"), BIT(CARD));
    cr_assert_eq(scan("IBAN DE89 3704 0044 0532 0130 00 thanks"), BIT(IBAN));
    cr_assert_eq(scan("IBAN GB82 WEST 1234 5698 7654 32 OK"), BIT(IBAN));
    cr_assert_eq(scan("ssn 078-05-1120."), BIT(SSN));
    cr_assert_eq(scan("server at 192.168.10.20 is down"), BIT(IP));
    cr_assert_eq(scan("v6 2001:db8::8a2e:370:7334 here"), BIT(IP));
    cr_assert_eq(scan("call +1 415 555 2671 today"), BIT(PHONE));
    cr_assert_eq(scan("call (415) 555-2671 today"), BIT(PHONE));
    cr_assert_eq(scan("key sk-proj-abcdefghijklmnopqrstuvwx1234"), BIT(SECRET));
    cr_assert_eq(scan("aws AKIAIOSFODNN7EXAMPLE"), BIT(SECRET));
    cr_assert_eq(scan("api_key=Zx8fQ2mLp9Rt4Vw7Ky3N"), BIT(SECRET));
}

Test(gw_detect, negatives_and_look_alikes) {
    const char *clean[] = {
        "Summarise the quarterly report in three bullet points.",
        "order 1234567890123456 shipped",          /* 16 digits, Luhn fails */
        "the meeting is on 2024-01-15 at 10:30",
        "upgrade to version 1.2.3 or 10.4",
        "IBAN DE00 1234 5678 9012 3456 78",         /* mod-97 fails */
        "ssn 000-12-3456 is not valid",
        "address 999.1.1.1 is not an IP",
        "password: aaaaaaaaaaaaaaaaaaaa",           /* low entropy */
        "we sold 1 000 000 units",
        "email me at alice at example dot com",
        "ratio 3:2:1 and time 12:30:45",
    };
    for (size_t i = 0; i < sizeof clean / sizeof clean[0]; i++)
        cr_expect_eq(scan(clean[i]), 0u, "false positive in \"%s\": mask %#x", clean[i], scan(clean[i]));
}

Test(gw_detect, overlaps_go_to_the_stronger_kind) {
    /* a card number is also a long digit run that the phone pattern sees */
    cr_assert_eq(scan("4111-1111-1111-1111"), BIT(CARD));
    /* an e-mail address contains a domain, not a secret */
    cr_assert_eq(scan("bob@example.org and 10.0.0.1"), BIT(EMAIL) | BIT(IP));
}

Test(gw_detect, redaction_masks_each_span) {
    const char *in = "mail bob@example.org, card 4111 1111 1111 1111, ok";
    char *out = NULL;
    unsigned mask = 0;
    cr_assert_eq(slm_gw_redact(D, in, strlen(in), &out, &mask), 0);
    cr_assert_str_eq(out, "mail [REDACTED_email], card [REDACTED_card], ok");
    cr_assert_eq(mask, BIT(EMAIL) | BIT(CARD));
    slm_free(out);
    cr_assert_eq(slm_gw_redact(D, "nothing here", 12, &out, &mask), 0);
    cr_assert_str_eq(out, "nothing here");
    slm_free(out);
}

Test(gw_detect, binary_and_empty_input) {
    cr_assert_eq(scan(""), 0u);
    char junk[300];
    for (int i = 0; i < 299; i++) junk[i] = (char)(i * 37 + 1);
    junk[299] = 0;
    slm_gw_pd_hits h = { 0 };
    cr_assert_eq(slm_gw_detect(D, junk, sizeof junk - 1, &h), 0);
    slm_gw_pd_hits_free(&h);
}
