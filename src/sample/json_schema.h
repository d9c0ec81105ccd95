/*
 * json_schema.h — compiling a JSON Schema into a json_grammar (private to
 * src/sample). The supported subset and the choices made are described at
 * the top of json_schema.c.
 */
#ifndef SLM_SAMPLE_JSON_SCHEMA_H
#define SLM_SAMPLE_JSON_SCHEMA_H

#include "sample/json_grammar.h"

/* Compiles len bytes of schema text. On success *out is a grammar the caller
 * frees with jg_grammar_free. Errors: SLM_EINVAL for text that is not JSON or
 * a malformed schema, SLM_EUNSUPPORTED naming the keyword slm does not
 * handle, SLM_ERANGE for a schema too large to compile, SLM_ENOMEM; err says
 * where (a JSON pointer into the schema). */
int jg_schema_compile(const char *schema, size_t len, jg_grammar **out, slm_err *err);

#endif
