/*
 * jsonschema_check.h — validating a JSON value against a JSON Schema subset
 * (private to src/eval; the json_schema scorer uses it). Unlike
 * src/sample/json_schema.c, which compiles a schema into a grammar that
 * decoding can follow, this checks a finished value and says where it fails.
 *
 * Supported: type (a name or an array; "integer" is a number with no
 * fraction), enum, const, properties, required, additionalProperties (false,
 * true or a schema), items (one schema), minItems/maxItems, minimum/maximum,
 * exclusiveMinimum/exclusiveMaximum (numbers), minLength/maxLength (code
 * points), pattern (PCRE2, UTF-8, unanchored as the standard says), anyOf,
 * oneOf, allOf, and $ref to a local JSON pointer ("#", "#/$defs/x", …),
 * boolean schemas. Annotations (title, description, default, format,
 * examples, $schema, $id, $comment, $defs, definitions) are ignored.
 * slm_eval_schema_verify rejects every other keyword, so a schema never
 * passes because a constraint was silently skipped.
 */
#ifndef SLM_EVAL_JSONSCHEMA_CHECK_H
#define SLM_EVAL_JSONSCHEMA_CHECK_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "slm/slm.h"

/* Checks that schema is well formed and uses only supported keywords
 * (patterns compile, $refs resolve). SLM_EINVAL / SLM_EUNSUPPORTED naming
 * the JSON pointer of the offending keyword. */
int slm_eval_schema_verify(const cJSON *schema, slm_err *err);

/* Validates value against schema (already verified). *ok gets the verdict;
 * when false, msg[0..msg_cap) gets the first violation ("/a/0: expected
 * integer, got string"). Returns 0, SLM_ENOMEM, or SLM_ERANGE when $ref
 * recursion is too deep. Thread-safe. */
int slm_eval_schema_check(const cJSON *schema, const cJSON *value, bool *ok,
                          char *msg, size_t msg_cap, slm_err *err);

#endif
