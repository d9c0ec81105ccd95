/*
 * constraint.h — constrained decoding: output that must be valid JSON (any
 * object, for response_format json_object) or JSON matching a JSON Schema
 * (json_schema), enforced while decoding by masking every token whose bytes
 * the grammar cannot accept from its current state.
 *
 * Lifetime: a constraint belongs to one generation; it references the
 * vocabulary (which must outlive it) and keeps its own state.
 *
 * The text allowed (src/sample/json_grammar.h, json_schema.c): JSON with
 * whitespace between tokens in runs of at most 32 bytes (none inside enum and
 * const values), objects and arrays nested at most 64 deep, numbers of at
 * most 18 integer and 18 fraction digits and 3 exponent digits, strings of
 * valid UTF-8 (a token may end inside a character; the next must finish it)
 * with correctly paired \u surrogates; for a schema, declared properties in
 * declaration order, required ones always, no undeclared ones.
 */
#ifndef SLM_SAMPLE_CONSTRAINT_H
#define SLM_SAMPLE_CONSTRAINT_H

#include <stdbool.h>
#include <stdint.h>
#include "slm/slm.h"

typedef struct slm_constraint slm_constraint;

/* schema_json: a JSON Schema document (UTF-8 text), or NULL for "any JSON
 * object". Unsupported schema features are SLM_EUNSUPPORTED naming the
 * keyword; malformed schemas SLM_EINVAL; schemas too large or with too many
 * anyOf choices at one position SLM_ERANGE; err says where in the schema.
 * *out is freed with slm_constraint_free. This builds the vocabulary index
 * too (tens of ms for 150k tokens): servers should share one, see below. */
int  slm_constraint_new_json(const slm_vocab *v, const char *schema_json, slm_constraint **out, slm_err *err);
void slm_constraint_free(slm_constraint *c);

/* The vocabulary side of constraints (every token's bytes, in a trie) costs
 * a few tens of milliseconds to build for a large vocabulary; build it once
 * per model and share it. It is read-only once built, so constraints on any
 * threads may use it at once. Reference counted: each constraint made from
 * it holds a reference, so slm_constraint_vocab_free may come before or
 * after the constraints are freed. v must outlive it. */
typedef struct slm_constraint_vocab slm_constraint_vocab;
int  slm_constraint_vocab_new(const slm_vocab *v, slm_constraint_vocab **out, slm_err *err);
void slm_constraint_vocab_free(slm_constraint_vocab *cv);
/* slm_constraint_new_json with a prepared index: compiles only the schema. */
int  slm_constraint_new_json_with(slm_constraint_vocab *cv, const char *schema_json,
                                  slm_constraint **out, slm_err *err);

/* Sets logits of tokens the grammar cannot accept next to -INFINITY. End-of-
 * generation tokens are allowed only once the value is complete; when it is
 * complete and nothing else can follow, only EOG tokens remain. Control,
 * unknown and unused tokens are always masked. logits has
 * slm_vocab_n_tokens(v) entries. In a dead end — no token can continue the
 * text, as when the vocabulary lacks bytes the schema needs — only the EOG
 * tokens are left, so that sampling stops. */
void slm_constraint_apply(slm_constraint *c, float *logits);
/* Advances the state by an accepted token; SLM_EINVAL if the token was not
 * allowed (a caller bug); SLM_EUNSUPPORTED for the EOG token that apply left
 * in a dead end (the text is incomplete: report it, do not continue). */
int  slm_constraint_accept(slm_constraint *c, int32_t token);
/* True when token may come next: the slow, one-token form of apply (it
 * steps the token's bytes), for callers that check a single token and for
 * tests. */
bool slm_constraint_allows(slm_constraint *c, int32_t token);
/* True when the text so far is a complete value. */
bool slm_constraint_done(const slm_constraint *c);

#endif
