/*
 * constraint.h — constrained decoding: output that must be valid JSON (any
 * object, for response_format json_object) or JSON matching a JSON Schema
 * (json_schema), enforced while decoding by masking every token whose bytes
 * the grammar cannot accept from its current state.
 *
 * Lifetime: a constraint belongs to one generation; it references the
 * vocabulary (which must outlive it) and keeps its own state.
 */
#ifndef SLM_SAMPLE_CONSTRAINT_H
#define SLM_SAMPLE_CONSTRAINT_H

#include <stdbool.h>
#include <stdint.h>
#include "slm/slm.h"

typedef struct slm_constraint slm_constraint;

/* schema_json: a JSON Schema document (UTF-8 text), or NULL for "any JSON
 * object". Unsupported schema features are SLM_EUNSUPPORTED naming the
 * keyword; malformed schemas SLM_EINVAL. */
int  slm_constraint_new_json(const slm_vocab *v, const char *schema_json, slm_constraint **out, slm_err *err);
void slm_constraint_free(slm_constraint *c);

/* Sets logits of tokens the grammar cannot accept next to -INFINITY. End-of-
 * generation tokens are allowed only once the value is complete; when it is
 * complete and nothing else can follow, only EOG tokens remain. */
void slm_constraint_apply(slm_constraint *c, float *logits);
/* Advances the state by an accepted token; SLM_EINVAL if the token was not
 * allowed (a caller bug). */
int  slm_constraint_accept(slm_constraint *c, int32_t token);
/* True when the text so far is a complete value. */
bool slm_constraint_done(const slm_constraint *c);

#endif
