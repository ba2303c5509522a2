#include <tg_config.h>
#include <tg_core.h>
#include <tg_http.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

/*
 * libFuzzer target: upstream responses through llhttp with tracegate's
 * response settings (tg_http_response_settings: status line, header
 * accumulation and limits, 1xx skipping, HEAD/204/304 handling, the pause
 * after the head and at the end), driven the way
 * tg_http_upstream_process() drives them, then the Connection tokens of
 * the response headers. In "dechunk" mode (a HTTP/1.0 client) the body
 * callback writes into a client bufferevent, whose bytes must then equal
 * the body llhttp reported.
 *
 * Input byte 0: bit 0 HEAD request, bit 1 dechunk, bits 4-7 the read size
 * (0: all at once); the rest is what the upstream sends. Several
 * responses on one connection (keep-alive) are parsed in turn.
 */

static struct event_base  *tg_fuzz_base;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static tg_cycle_t  cycle;

    tg_fuzz_base = event_base_new();
    if (tg_fuzz_base == NULL) {
        abort();
    }
    cycle.main.proxy_buffer_size = 64 * 1024;
    tg_cycle = &cycle;
    tg_log_global.level = -1;
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                 nresp;
    size_t              step, off, n, i;
    uint64_t            body, after;
    tg_pool_t          *pool;
    tg_http_conn_t     *c;
    llhttp_errno_t      err;
    tg_http_header_t   *h;
    tg_http_request_t  *r;

    if (size < 1) {
        return 0;
    }
    step = data[0] >> 4;
    pool = tg_pool_create(4096);
    c = calloc(1, sizeof(tg_http_conn_t));
    if (pool == NULL || c == NULL) {
        goto done;
    }
    c->bev = bufferevent_socket_new(tg_fuzz_base, -1, 0);
    if (c->bev == NULL) {
        goto done;
    }
    c->log = tg_log_global;

    off = 1;
    for (nresp = 0; nresp < 4 && off < size; nresp++) {
        r = tg_pcalloc(pool, sizeof(tg_http_request_t));
        if (r == NULL
            || tg_array_init(&r->upstream.headers, pool, 16,
                             sizeof(tg_http_header_t))
                   != TG_OK)
        {
            break;
        }
        r->c = c;
        r->pool = pool;
        r->head = data[0] & 1;
        r->response_dechunk = (data[0] >> 1) & 1;
        r->upstream.content_length = -1;
        llhttp_init(&r->upstream.parser, HTTP_RESPONSE, &tg_http_response_settings);
        r->upstream.parser.data = r;
        body = evbuffer_get_length(bufferevent_get_output(c->bev));

        while (off < size) {
            n = step ? tg_min(step, size - off) : size - off;
            err = llhttp_execute(&r->upstream.parser, (const char *) data + off, n);
            if (err == HPE_OK) {
                off += n;
                continue;
            }
            if (err != HPE_PAUSED) {
                break; /* 502 or an aborted client response */
            }
            off += (size_t) (llhttp_get_error_pos(&r->upstream.parser)
                             - (const char *) data - off);
            if (r->upstream.done) {
                break;
            }
            if (!r->upstream.headers_done) {
                abort(); /* pauses only after a final head */
            }
            llhttp_resume(&r->upstream.parser);
        }
        if (!r->upstream.done && llhttp_get_errno(&r->upstream.parser) == HPE_OK) {
            /* upstream EOF: a close-delimited body ends here */
            (void) llhttp_finish(&r->upstream.parser);
        }

        if (r->upstream.headers_done) {
            if (r->upstream.status < 100 || r->upstream.status > 999
                || (r->upstream.status < 200))
            {
                abort(); /* a final response has a 2xx-9xx status */
            }
            if (r->upstream.headers.nelts > 200 || r->upstream.reason.len > 256) {
                abort();
            }
            h = r->upstream.headers.elts;
            for (i = 0; i < r->upstream.headers.nelts; i++) {
                if (h[i].name.len == 0 || h[i].value.data == NULL) {
                    abort();
                }
            }
            (void) tg_http_parse_connection_tokens(r, &r->upstream.headers);
            if (r->head && r->upstream.body_bytes != 0) {
                abort(); /* a response to HEAD has no body */
            }
        }
        if (r->response_dechunk) {
            /* the output of an unconnected bufferevent cannot be drained
               (its start is frozen): compare the growth */
            after = evbuffer_get_length(bufferevent_get_output(c->bev));
            if (after - body != r->upstream.body_bytes) {
                abort();
            }
        }
        if (!r->upstream.done
            || !llhttp_should_keep_alive(&r->upstream.parser))
        {
            break;
        }
        tg_pool_reset(pool);
    }

done:
    if (c && c->bev) {
        bufferevent_free(c->bev);
        /* libevent 2.1 finalizes a freed bufferevent from the loop */
        event_base_loop(tg_fuzz_base, EVLOOP_NONBLOCK);
    }
    free(c);
    tg_pool_destroy(pool);
    return 0;
}
