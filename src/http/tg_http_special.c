#include <tg_config.h>
#include <tg_core.h>
#include <tg_http.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>


static size_t
tg_http_date(char *buf)
{
    static time_t  cached;
    static char    text[40];
    time_t         now;
    struct tm      tm;

    now = time(NULL);
    if (now != cached) {
        gmtime_r(&now, &tm);
        strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached = now;
    }
    memcpy(buf, text, 29);
    return 29;
}


/*
 * Writes the status line and headers of a response the gateway makes
 * itself, with keep-alive decided as for proxied responses. Returns the
 * client output to append len body bytes to (when not HEAD), or NULL
 * when it was too late (the connection is closed then).
 */
static struct evbuffer *
tg_http_send_head(tg_http_request_t *r, int status, const char *type,
    const char *extra, size_t len)
{
    int               n;
    char              head[1536], date[40];
    size_t            before;
    u_char           *tail, *p;
    struct evbuffer  *out;

    if (r->response_started) {
        /* too late for a different answer: cut the response short */
        r->response_close = 1;
        tg_http_close_connection(r->c);
        return NULL;
    }
    r->status = status;
    r->response_started = 1;
    if (!r->body_done || status == 400 || status == 408 || status == 431
        || status == 414 || status == 413)
    {
        /* unread request bytes must never pass for the next request */
        r->keepalive = 0;
    }
    if (!tg_http_keepalive_allowed(r)) {
        r->response_close = 1;
    }

    tg_http_date(date);
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\n"
                 "Server: tracegate\r\n"
                 "Date: %.29s\r\n"
                 "Content-Type: %s\r\n"
                 "Content-Length: %zu\r\n"
                 "%s%s",
                 status, tg_http_status_reason(status), date, type, len,
                 extra ? extra : "",
                 r->response_close ? "Connection: close\r\n"
                 : (r->http_minor == 0 ? "Connection: keep-alive\r\n" : ""));
    if (n < 0 || (size_t) n >= sizeof(head)) {
        r->response_close = 1;
        tg_http_close_connection(r->c);
        return NULL;
    }

    tail = tg_pnalloc(r->pool, tg_http_trace_response_headers_max() + 2);
    if (tail == NULL) {
        r->response_close = 1;
        tg_http_close_connection(r->c);
        return NULL;
    }
    p = tg_http_trace_response_headers(r, tail);
    *p++ = CR;
    *p++ = LF;
    out = bufferevent_get_output(r->c->bev);
    before = evbuffer_get_length(out);
    evbuffer_add(out, head, (size_t) n);
    evbuffer_add(out, tail, (size_t) (p - tail));
    r->bytes_sent += evbuffer_get_length(out) - before;
    if (!r->head) {
        r->bytes_sent += len;
        r->body_bytes_sent = len;
    }
    return out;
}


int
tg_http_send_response(tg_http_request_t *r, int status, const char *type,
    const char *extra, struct evbuffer *body)
{
    struct evbuffer  *out;

    out = tg_http_send_head(r, status, type, extra,
                            body ? evbuffer_get_length(body) : 0);
    if (out == NULL) {
        return TG_DONE;
    }
    if (body && !r->head) {
        evbuffer_add_buffer(out, body);
    }
    tg_http_request_done(r);
    return TG_DONE;
}


/*
 * Answers the request itself (health, index, errors): html/ page when
 * loaded, else a short built-in body.
 */
int
tg_http_send_special(tg_http_request_t *r, int status)
{
    int               n;
    char              body_buf[512];
    tg_str_t          body;
    const char       *type;
    struct evbuffer  *out;

    type = "text/html";
    if (status == 200 && tg_cycle->main.health.len
        && tg_str_eq(&r->path, &tg_cycle->main.health))
    {
        tg_str_set(&body, "ok\n");
        type = "text/plain";
    } else if (status == 200) {
        body = tg_cycle->page_index;
    } else if (status == 404 && tg_cycle->page_404.len) {
        body = tg_cycle->page_404;
    } else if (status >= 500 && tg_cycle->page_50x.len) {
        body = tg_cycle->page_50x;
    } else {
        n = snprintf(body_buf, sizeof(body_buf),
                     "<html>\n<head><title>%d %s</title></head>\n<body>\n"
                     "<center><h1>%d %s</h1></center>\n"
                     "<hr><center>tracegate</center>\n</body>\n</html>\n",
                     status, tg_http_status_reason(status), status,
                     tg_http_status_reason(status));
        body.data = (u_char *) body_buf;
        body.len = (size_t) n;
    }

    out = tg_http_send_head(r, status, type, NULL, body.len);
    if (out == NULL) {
        return TG_ERROR;
    }
    if (!r->head) {
        evbuffer_add(out, body.data, body.len);
    }
    tg_http_request_done(r);
    return TG_OK;
}
