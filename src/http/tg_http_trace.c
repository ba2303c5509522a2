#include <tg_config.h>
#include <tg_core.h>
#include <tg_http.h>

#include <event2/buffer.h>


void
tg_http_trace_start(tg_http_request_t *r)
{
    tg_random_trace_id(r->trace_id);
    tg_random_span_id(r->span_id);
    r->trace_flags = 1;
    r->sampled = 1;
    tg_hex_encode(r->trace_hex, r->trace_id, 16);
    r->trace_hex[32] = '\0';
}


void
tg_http_trace_client_attempt(tg_http_request_t *r)
{
    tg_random_span_id(r->client_span_id);
}


void
tg_http_trace_client_end(tg_http_request_t *r)
{
}


void
tg_http_trace_server_end(tg_http_request_t *r)
{
}


u_char *
tg_http_trace_add_request_headers(tg_http_request_t *r, u_char *p)
{
    p = (u_char *) mempcpy(p, "traceparent: 00-", 16);
    p = tg_hex_encode(p, r->trace_id, 16);
    *p++ = '-';
    p = tg_hex_encode(p, r->client_span_id, 8);
    p = (u_char *) mempcpy(p, r->sampled ? "-01\r\n" : "-00\r\n", 5);
    return p;
}


int
tg_http_trace_skip_response_header(tg_http_request_t *r, const tg_str_t *name)
{
    return 0;
}


void
tg_http_trace_response_headers(tg_http_request_t *r, struct evbuffer *out)
{
}


size_t
tg_http_request_spans(tg_http_request_t *r, tg_span_t **spans)
{
    *spans = r->spans;
    return r->nspans;
}
