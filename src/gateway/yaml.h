/*
 * yaml.h — a YAML document as a small tree with line numbers. libyaml's
 * event parser builds it; the config validator walks it and names the line
 * of every problem. Scalars keep their text; mappings keep their keys in
 * file order (a duplicate key is an error at parse time); aliases, tags and
 * multi-document streams are refused: a gateway config needs none of them.
 */
#ifndef SLM_GATEWAY_YAML_H
#define SLM_GATEWAY_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include "slm/slm.h"

typedef enum slm_gw_ykind { SLM_GW_Y_SCALAR, SLM_GW_Y_SEQ, SLM_GW_Y_MAP } slm_gw_ykind;

typedef struct slm_gw_ynode slm_gw_ynode;
struct slm_gw_ynode {
    slm_gw_ykind kind;
    int line;                 /* 1-based line where the node starts           */
    bool quoted;              /* scalar written in quotes (never null/bool)   */
    char *str;                /* scalar text (owned), NULL otherwise          */
    char **keys;              /* map: key texts, n entries (owned)            */
    int *key_lines;           /* map: line of each key                        */
    slm_gw_ynode **kids;      /* map values or sequence items, n entries      */
    int n, cap;               /* entries used / allocated                     */
};

/* Parses len bytes of YAML text. On success *out owns the root (free with
 * slm_gw_ynode_free); an empty document gives an empty map. On failure err
 * says "LINE:COL: problem" (the caller prefixes the file name). */
int  slm_gw_yaml_parse(const char *text, size_t len, slm_gw_ynode **out, slm_err *err);
void slm_gw_ynode_free(slm_gw_ynode *n);

/* The value of key in a map, or NULL; *line_out (if not NULL) gets the
 * key's line. */
const slm_gw_ynode *slm_gw_ymap_get(const slm_gw_ynode *map, const char *key, int *line_out);

#endif
