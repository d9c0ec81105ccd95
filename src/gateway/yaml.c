/*
 * yaml.c — libyaml events to a slm_gw_ynode tree. A stack of open
 * collections receives each finished node; a mapping alternates between
 * expecting a key (which must be a scalar, and new) and a value. Lines come
 * from the events' start marks, so the validator can say "line 12".
 */
#include "gateway/yaml.h"

#include <string.h>
#include <yaml.h>

#include "util/alloc.h"
#include "util/err.h"

#define MAX_DEPTH 64

void slm_gw_ynode_free(slm_gw_ynode *n) {
    if (!n) return;
    for (int i = 0; i < n->n; i++) {
        if (n->keys) slm_free(n->keys[i]);
        slm_gw_ynode_free(n->kids[i]);
    }
    slm_free(n->keys);
    slm_free(n->key_lines);
    slm_free(n->kids);
    slm_free(n->str);
    slm_free(n);
}

const slm_gw_ynode *slm_gw_ymap_get(const slm_gw_ynode *map, const char *key, int *line_out) {
    if (!map || map->kind != SLM_GW_Y_MAP) return NULL;
    for (int i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i], key)) {
            if (line_out) *line_out = map->key_lines[i];
            return map->kids[i];
        }
    return NULL;
}

static slm_gw_ynode *node_new(slm_gw_ykind kind, int line) {
    slm_gw_ynode *n = slm_calloc(1, sizeof *n);
    if (n) { n->kind = kind; n->line = line; }
    return n;
}

/* Appends kid (and, for maps, key) to parent; takes ownership of kid and
 * key in every case. */
static int append(slm_gw_ynode *p, char *key, int key_line, slm_gw_ynode *kid) {
    if (p->n == p->cap) {
        int nc = p->cap ? p->cap * 2 : 4;
        slm_gw_ynode **k = slm_realloc(p->kids, (size_t)nc * sizeof *k);
        if (k) p->kids = k;
        if (p->kind == SLM_GW_Y_MAP) {
            char **ks = k ? slm_realloc(p->keys, (size_t)nc * sizeof *ks) : NULL;
            if (ks) p->keys = ks;
            int *kl = ks ? slm_realloc(p->key_lines, (size_t)nc * sizeof *kl) : NULL;
            if (kl) p->key_lines = kl;
            if (!kl) k = NULL;
        }
        if (!k) { slm_free(key); slm_gw_ynode_free(kid); return SLM_ENOMEM; }
        p->cap = nc;
    }
    if (p->kind == SLM_GW_Y_MAP) { p->keys[p->n] = key; p->key_lines[p->n] = key_line; }
    p->kids[p->n++] = kid;
    return 0;
}

typedef struct frame {
    slm_gw_ynode *node;
    char *pending_key;   /* map: key read, value not yet */
    int pending_line;
} frame;

/* Hands a finished node to the innermost open collection (or the root). */
static int deliver(frame *st, int depth, slm_gw_ynode *n, slm_gw_ynode **root, slm_err *err) {
    if (depth == 0) { *root = n; return 0; }
    frame *f = &st[depth - 1];
    if (f->node->kind == SLM_GW_Y_SEQ) return append(f->node, NULL, 0, n);
    if (!f->pending_key) {
        if (n->kind != SLM_GW_Y_SCALAR) {
            int line = n->line;
            slm_gw_ynode_free(n);
            return slm_err_set(err, SLM_EFORMAT, "%d: a mapping key must be a plain scalar", line);
        }
        if (slm_gw_ymap_get(f->node, n->str, NULL)) {
            int r = slm_err_set(err, SLM_EFORMAT, "%d: duplicate key '%s'", n->line, n->str);
            slm_gw_ynode_free(n);
            return r;
        }
        f->pending_key = n->str;
        f->pending_line = n->line;
        n->str = NULL;
        slm_gw_ynode_free(n);
        return 0;
    }
    char *key = f->pending_key;
    f->pending_key = NULL;
    return append(f->node, key, f->pending_line, n);
}

int slm_gw_yaml_parse(const char *text, size_t len, slm_gw_ynode **out, slm_err *err) {
    yaml_parser_t p;
    yaml_event_t ev;
    frame st[MAX_DEPTH];
    int depth = 0, rc = 0, n_docs = 0;
    slm_gw_ynode *root = NULL;
    *out = NULL;
    if (!yaml_parser_initialize(&p)) return slm_err_set(err, SLM_ENOMEM, "cannot initialise the YAML parser");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    for (bool done = false; !done && rc == 0;) {
        if (!yaml_parser_parse(&p, &ev)) {
            rc = slm_err_set(err, SLM_EFORMAT, "%zu:%zu: %s%s%s", p.problem_mark.line + 1, p.problem_mark.column + 1,
                             p.problem ? p.problem : "invalid YAML", p.context ? " " : "", p.context ? p.context : "");
            break;
        }
        int line = (int)ev.start_mark.line + 1;
        slm_gw_ynode *n = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = true; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++n_docs > 1) rc = slm_err_set(err, SLM_EFORMAT, "%d: only one YAML document is allowed", line);
            break;
        case YAML_ALIAS_EVENT:
            rc = slm_err_set(err, SLM_EFORMAT, "%d: YAML aliases are not supported", line);
            break;
        case YAML_SCALAR_EVENT:
            if (!(n = node_new(SLM_GW_Y_SCALAR, line)) ||
                !(n->str = slm_strndup((const char *)ev.data.scalar.value, ev.data.scalar.length))) {
                slm_gw_ynode_free(n);
                rc = slm_err_set(err, SLM_ENOMEM, "out of memory reading the config");
                break;
            }
            n->quoted = ev.data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                        ev.data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
            rc = deliver(st, depth, n, &root, err);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (depth == MAX_DEPTH) { rc = slm_err_set(err, SLM_EFORMAT, "%d: nesting deeper than %d", line, MAX_DEPTH); break; }
            if (!(n = node_new(ev.type == YAML_SEQUENCE_START_EVENT ? SLM_GW_Y_SEQ : SLM_GW_Y_MAP, line))) {
                rc = slm_err_set(err, SLM_ENOMEM, "out of memory reading the config");
                break;
            }
            st[depth++] = (frame){ n, NULL, 0 };
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            n = st[--depth].node;
            slm_free(st[depth].pending_key);
            rc = deliver(st, depth, n, &root, err);
            break;
        default: break;
        }
        yaml_event_delete(&ev);
    }
    while (depth > 0) {
        depth--;
        slm_free(st[depth].pending_key);
        slm_gw_ynode_free(st[depth].node);
    }
    yaml_parser_delete(&p);
    if (rc == 0 && !root && !(root = node_new(SLM_GW_Y_MAP, 1))) rc = slm_err_set(err, SLM_ENOMEM, "out of memory");
    if (rc) { slm_gw_ynode_free(root); return rc; }
    *out = root;
    return 0;
}
