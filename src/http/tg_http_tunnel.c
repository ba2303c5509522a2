#include <tg_config.h>
#include <tg_core.h>
#include <tg_http.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>


/*
 * Upgrade tunnels (WebSocket and the like): after a 101 from the upstream,
 * bytes are relayed both ways unchanged. Each direction stops reading its
 * source while the destination holds proxy_buffer_size bytes, so a slow
 * side throttles the other. The tunnel ends when either side closes (the
 * other side's pending output is flushed first) or when no byte moved for
 * tunnel_timeout.
 */

static void tg_http_tunnel_arm_timer(tg_http_request_t *r);


static void
tg_http_tunnel_arm_timer(tg_http_request_t *r)
{
    if (tg_cycle->main.tunnel_timeout > 0) {
        tg_http_set_timer(r->c, tg_cycle->main.tunnel_timeout);
    }
}


void
tg_http_tunnel_start(tg_http_request_t *r)
{
    tg_http_conn_t  *c = r->c;

    r->tunnel.active = 1;
    r->response_close = 1;
    r->state = TG_HTTP_SEND_RESPONSE;
    /* no read timeouts: idleness is measured over both directions */
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    bufferevent_set_timeouts(r->upstream.uc->bev, NULL, NULL);
    tg_upstream_set_timer(r->upstream.uc, 0);
    tg_http_read_on(c->bev);
    tg_http_read_on(r->upstream.uc->bev);
    tg_http_tunnel_arm_timer(r);
    tg_log_debug(&c->log, "tunnel to " TG_STR_FMT " open",
                 TG_STR_ARG(&r->upstream.server->text));
    /* bytes that came with the upgrade request or the 101 go first */
    tg_http_tunnel_relay(r, 1);
    if (c->r == r && r->upstream.uc) {
        tg_http_tunnel_relay(r, 0);
    }
    if (c->r == r) {
        /* the 101 itself: clients wait for it before they say anything */
        tg_http_flush(c->bev, c->listen->ssl);
    }
}


/*
 * Moves what one side sent to the other. from_client: 1 client to
 * upstream, 0 upstream to client.
 */
void
tg_http_tunnel_relay(tg_http_request_t *r, int from_client)
{
    int                  ssl;
    size_t               n;
    struct bufferevent  *src, *dst;

    if (r->upstream.uc == NULL || r->tunnel.closing) {
        return;
    }
    src = from_client ? r->c->bev : r->upstream.uc->bev;
    dst = from_client ? r->upstream.uc->bev : r->c->bev;
    n = tg_event_input_length(src);
    if (n == 0) {
        return;
    }
    if (tg_event_input_move(src, bufferevent_get_output(dst), n) != TG_OK) {
        tg_log_error(TG_LOG_ALERT, &r->c->log, 0, "out of memory");
        tg_http_close_connection(r->c);
        return;
    }
    if (from_client) {
        r->request_body_bytes += n;
    } else {
        r->upstream.body_bytes += n;
    }
    tg_http_tunnel_arm_timer(r);
    ssl = from_client ? r->upstream.server->ssl : r->c->listen->ssl;
    if (!tg_http_throttle(src, dst, ssl)) {
        tg_http_flush(dst, ssl);
    }
}


/* A destination drained below its low mark: its source may read again. */
void
tg_http_tunnel_drained(tg_http_request_t *r, int to_client)
{
    struct bufferevent  *src, *dst;

    if (r->upstream.uc == NULL) {
        return;
    }
    src = to_client ? r->upstream.uc->bev : r->c->bev;
    dst = to_client ? r->c->bev : r->upstream.uc->bev;
    if (r->tunnel.closing) {
        tg_http_tunnel_close(r, NULL);
        return;
    }
    bufferevent_setwatermark(dst, EV_WRITE, 0, 0);
    if (!(bufferevent_get_enabled(src) & EV_READ)) {
        bufferevent_enable(src, EV_READ);
        bufferevent_trigger(src, EV_READ, BEV_OPT_DEFER_CALLBACKS);
    }
}


/*
 * Ends the tunnel: once both outputs are flushed (or at once on an error
 * or a timeout), the spans end with the byte counts and both connections
 * close. why is logged once; NULL when called again after a drain.
 */
void
tg_http_tunnel_close(tg_http_request_t *r, const char *why)
{
    tg_http_conn_t  *c = r->c;

    if (why) {
        tg_log_debug(&c->log, "tunnel closing: %s (%" PRIu64 " bytes up, %"
                     PRIu64 " down)", why, r->request_body_bytes,
                     r->upstream.body_bytes);
        r->tunnel.closing = 1;
        if (strcmp(why, "timeout") == 0 || strcmp(why, "error") == 0) {
            r->tunnel.abort = 1;
        }
        if (strcmp(why, "error") == 0) {
            r->tunnel.error = 1;
            r->error_type = "connection_reset";
        }
    }
    if (r->upstream.uc) {
        bufferevent_disable(r->upstream.uc->bev, EV_READ);
    }
    bufferevent_disable(c->bev, EV_READ);
    if (!r->tunnel.abort
        && ((r->upstream.uc && !tg_http_flush(r->upstream.uc->bev, r->upstream.server->ssl))
            || !tg_http_flush(c->bev, c->listen->ssl)))
    {
        if (r->upstream.uc) {
            bufferevent_setwatermark(r->upstream.uc->bev, EV_WRITE, 0, 0);
        }
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        return; /* the write handlers call back when drained */
    }
    /* an idle timeout is the tunnel's normal end; only errors are errors */
    r->upstream.done = !r->tunnel.error;
    tg_http_upstream_abort(r); /* ends the CLIENT span, closes upstream */
    r->upstream.done = 1;
    r->body_done = 1;
    r->state = TG_HTTP_DONE;
    tg_http_set_timer(c, 0);
    tg_http_request_done(r);
}
