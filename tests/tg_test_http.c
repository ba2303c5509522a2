#include <tg_config.h>
#include <tg_core.h>
#include <tg_http.h>
#include "tg_test_http.h"


int
tg_test_http_init(tg_pool_t *pool, tg_http_conn_t *c, tg_http_request_t *r)
{
    memset(c, 0, sizeof(tg_http_conn_t));
    memset(r, 0, sizeof(tg_http_request_t));
    if (tg_array_init(&r->headers, pool, 8, sizeof(tg_http_header_t))
            != TG_OK
        || tg_array_init(&r->upstream.headers, pool, 8,
                         sizeof(tg_http_header_t))
               != TG_OK)
    {
        return TG_ERROR;
    }
    r->c = c;
    r->pool = pool;
    r->content_length = -1;
    r->upstream.content_length = -1;
    c->r = r;
    return TG_OK;
}


tg_http_request_t *
tg_test_http_request(tg_pool_t *pool)
{
    tg_http_conn_t     *c;
    tg_http_request_t  *r;

    c = tg_palloc(pool, sizeof(tg_http_conn_t));
    r = tg_palloc(pool, sizeof(tg_http_request_t));
    if (c == NULL || r == NULL || tg_test_http_init(pool, c, r) != TG_OK) {
        return NULL;
    }
    return r;
}


int
tg_test_http_header_n(tg_http_request_t *r, const char *name,
    const u_char *value, size_t value_len, uint32_t flags)
{
    tg_http_header_t  *h;

    h = tg_array_push(&r->headers);
    if (h == NULL) {
        return TG_ERROR;
    }
    h->name.data = (u_char *) name;
    h->name.len = strlen(name);
    h->value.data = (u_char *) value;
    h->value.len = value_len;
    h->flags = flags;
    return TG_OK;
}


int
tg_test_http_header(tg_http_request_t *r, const char *name,
    const char *value, uint32_t flags)
{
    return tg_test_http_header_n(r, name, (const u_char *) value,
                                 strlen(value), flags);
}
