#ifndef _TG_HTTP_ROUTE_H_INCLUDED_
#define _TG_HTTP_ROUTE_H_INCLUDED_

#include <tg_http_types.h>

/*
 * Path-prefix routes. A prefix matches only at a segment boundary: the
 * path equals it, or continues with '/' (so /service-a never matches
 * /service-abc). The longest matching prefix wins.
 */

struct tg_http_route_s {
    tg_str_t        prefix;          /* without a trailing '/' (except "/") */
    tg_str_t        upstream_name;
    tg_upstream_t  *upstream;
    int             strip_prefix;
    int             trust_incoming_context;
    const char     *conf_file;
    int             conf_line;
};

/*
 * [route PREFIX], a built-in module: its conf is the cycle's array of
 * tg_http_route_t *; init_conf (after [upstream]) links each route to its
 * upstream, fills defaults and sorts them longest prefix first.
 */
extern tg_module_t  tg_http_route_module;

#define tg_http_routes(cycle)                                                  \
    ((tg_array_t *) tg_module_conf(cycle, tg_http_route_module))

/* The route for a normalised path (no query), or NULL. */
tg_http_route_t *tg_http_route_find(tg_array_t *routes, const tg_str_t *path);

/*
 * Normalises an origin-form path in place: collapses "//", resolves "."
 * and ".." segments (RFC 3986 5.2.4) and decodes nothing else. Returns
 * TG_OK, or TG_ERROR when ".." would climb above the root or the path
 * does not start with '/'.
 */
int tg_http_path_normalize(tg_str_t *path);

/*
 * Whether a raw path (as received, without the query) holds a form that
 * upstreams resolve in other ways than we route it: a backslash, "%2f" or
 * "%5c" (any case), or a dot-segment followed by ";" path parameters
 * ("..;/", ".;x/", "%2e%2e;x/"). [main] reject_ambiguous_paths makes
 * these a 400.
 */
int tg_http_path_ambiguous(const tg_str_t *path);

#endif /* _TG_HTTP_ROUTE_H_INCLUDED_ */
