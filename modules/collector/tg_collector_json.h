#ifndef _TG_COLLECTOR_JSON_H_INCLUDED_
#define _TG_COLLECTOR_JSON_H_INCLUDED_

/*
 * A small strict JSON reader (RFC 8259) for OTLP/JSON request bodies: the
 * whole document becomes a tree of nodes in a pool. Strings are unescaped
 * into UTF-8 (\u escapes and surrogate pairs included); numbers keep their
 * text. Depth is limited; anything malformed is an error, never a guess.
 */

#define TG_JSON_NULL   0
#define TG_JSON_BOOL   1
#define TG_JSON_NUMBER 2
#define TG_JSON_STRING 3
#define TG_JSON_ARRAY  4
#define TG_JSON_OBJECT 5

#define TG_JSON_DEPTH_MAX 64

typedef struct tg_json_s  tg_json_t;

struct tg_json_s {
    int         type;
    int         boolean;
    tg_str_t    key;    /* member name when the parent is an object */
    tg_str_t    str;    /* STRING value, or the NUMBER's text */
    tg_json_t  *child;  /* first element or member */
    tg_json_t  *next;   /* next sibling */
};

/*
 * Parses p[0..len) into a tree allocated from pool; the text is not
 * referenced afterwards. Returns the root, or NULL with a reason in err.
 *
 * With lim (else NULL), the body is read as an OTLP/JSON
 * ExportTraceServiceRequest and counted as it is parsed (lim is reset
 * first; see tg_collector_limits.h): every value against the budget,
 * resource spans, scope spans, spans, events, links and attributes (every
 * element of an "attributes" or kvlist "values" array, and of an array
 * value's "values") before each is read. The parse stops at the first
 * count over its limit: NULL with lim->over set, so the tree never holds
 * more than the limits allow.
 */
tg_json_t *tg_json_parse(tg_pool_t *pool, const u_char *p, size_t len,
    tg_collector_limits_t *lim, char *err, size_t errlen);

/*
 * The member of an object named key, or else alt (may be NULL): OTLP/JSON
 * receivers accept lowerCamelCase and the original snake_case names.
 * NULL when absent or when obj is not an object.
 */
tg_json_t *tg_json_get(const tg_json_t *obj, const char *key,
    const char *alt);

/* A NUMBER or a STRING holding an integer (int64 in OTLP/JSON); TG_OK. */
int tg_json_int(const tg_json_t *v, int64_t *out);
int tg_json_uint(const tg_json_t *v, uint64_t *out);

#endif /* _TG_COLLECTOR_JSON_H_INCLUDED_ */
