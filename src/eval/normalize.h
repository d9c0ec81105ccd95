/*
 * normalize.h — text normalisation for scoring (private to src/eval).
 *
 * One pass per step, in the order SQuAD's evaluation script uses: case fold,
 * drop punctuation, drop English articles, collapse whitespace; leading and
 * trailing whitespace is always trimmed. Case folding lowers ASCII and the
 * two-byte UTF-8 letters that have a simple one-to-one lower case of the
 * same length: Latin-1 (À..Þ but ×), Latin Extended-A (Ā..ž), Greek (Α..Ω)
 * and Cyrillic (Ѐ..Я); everything else passes through unchanged. Punctuation
 * is ASCII punctuation plus the common Unicode marks (curly quotes, dashes,
 * ellipsis, «», ¡¿, CJK full stop and comma); it is deleted, not replaced by
 * a space, as SQuAD does ("don't" -> "dont"). Whitespace is ASCII white space
 * and U+00A0. Invalid UTF-8 bytes pass through unchanged.
 */
#ifndef SLM_EVAL_NORMALIZE_H
#define SLM_EVAL_NORMALIZE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "slm/slm.h"

enum {
    SLM_NORM_CASE       = 1u << 0, /* "case": lower case (ASCII + see above)     */
    SLM_NORM_WHITESPACE = 1u << 1, /* "whitespace": runs of white space -> " "    */
    SLM_NORM_PUNCT      = 1u << 2, /* "punctuation": delete punctuation           */
    SLM_NORM_ARTICLES   = 1u << 3, /* "articles": delete the words a, an, the
                                      (any case); implies whitespace collapsing */
};

/* Reads a "normalize" option: a step name, an array of step names, true (all
 * four steps), false or NULL (none). *flags gets the SLM_NORM_* bits.
 * SLM_EINVAL naming the unknown step otherwise. */
int slm_eval_norm_parse(const cJSON *opt, unsigned *flags, slm_err *err);

/* The step names, NULL-terminated, for --help. */
const char *const *slm_eval_norm_names(void);

/* Normalises s[0..len) by flags (and trims). Returns a NUL-terminated string
 * the caller frees with slm_free, or NULL when out of memory. */
char *slm_eval_normalize(const char *s, size_t len, unsigned flags);

/* Lower-cases one UTF-8 code point in place as described above; returns its
 * byte length (1 for an invalid byte). */
size_t slm_eval_fold_char(unsigned char *p, size_t n);

/* Word tokens for ROUGE: s is case-folded and split into maximal runs of
 * ASCII letters and digits and non-ASCII code points that are neither
 * punctuation nor white space (unlike rouge_score, which drops non-ASCII,
 * other scripts keep their words). Returns a copy of s in which every
 * separator byte is NUL, so each token is a C string at (*starts)[i];
 * *n gets the count. The caller frees both with slm_free; NULL when out of
 * memory. */
char *slm_eval_word_tokens(const char *s, size_t **starts, size_t *n);

/* True for a byte that belongs to a word for whole-word matching: ASCII
 * letters and digits, and any byte >= 0x80 (non-ASCII text counts as word). */
static inline bool slm_eval_is_word_byte(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

#endif
