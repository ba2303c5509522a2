#ifndef _TG_TEST_HTTP_H_INCLUDED_
#define _TG_TEST_HTTP_H_INCLUDED_

/*
 * A request and its client connection for the unit tests, made as
 * tg_http_conn.c makes them before the parser runs (tg_http_request_new),
 * without a socket, a bufferevent, a listener or a parser. Linked from
 * objs/tests/libtgtest.a (tests/tg_test*.c).
 */

/* include after tg_config.h, tg_core.h and tg_http.h */


/*
 * Zeroes *c and *r and links them (r->c, c->r); r->pool = pool; empty lists
 * of 8 for the client's and the upstream's headers, from pool; no
 * Content-Length on either side (-1). Returns TG_OK, or TG_ERROR when pool
 * is out of memory. The caller owns c, r and pool.
 */
int tg_test_http_init(tg_pool_t *pool, tg_http_conn_t *c,
    tg_http_request_t *r);

/*
 * The same with c and r allocated from pool: returns r (r->c is the
 * connection), or NULL when pool is out of memory. Both live as long as
 * pool.
 */
tg_http_request_t *tg_test_http_request(tg_pool_t *pool);

/*
 * Appends a client header to r->headers; name and value are not copied
 * (a literal or a buffer that outlives r). value_len is the value's length
 * (it may hold NUL bytes). Returns TG_OK, or TG_ERROR when the list cannot
 * grow.
 */
int tg_test_http_header_n(tg_http_request_t *r, const char *name,
    const u_char *value, size_t value_len, uint32_t flags);

/* The same with a C string value. */
int tg_test_http_header(tg_http_request_t *r, const char *name,
    const char *value, uint32_t flags);

#endif /* _TG_TEST_HTTP_H_INCLUDED_ */
