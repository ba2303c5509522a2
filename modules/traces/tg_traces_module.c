#include <tg_config.h>
#include <tg_core.h>
#include <tg_cycle.h>
#include <tg_admin.h>
#include <tg_http.h>
#include <tg_traces_json.h>

#include <event2/buffer.h>


/*
 * [traces]: the recent-trace store and its viewer. Off unless location is
 * set. The store is mapped in the master (init_conf) so that every worker
 * serves the same traces; a reload with the same bounds keeps the store
 * and its traces.
 *
 * The viewer and its API show URLs with their queries, client addresses
 * and X-Trace-IDs, so they are an admin page like [status]:
 *
 *   allow = CIDR | all        repeatable; default 127.0.0.1 and ::1;
 *                             other clients get 403
 *   listen = ADDR:PORT        optional: a plain-HTTP listener of its own
 *                             that serves only the viewer (other paths
 *                             404); the [main] listeners then do not
 *
 * On a listener bound to loopback, a Host that is not a loopback name gets
 * 421 (DNS rebinding; tg_admin_access). -t warns when the viewer can be
 * reached from other hosts (tg_admin_warn_open).
 */

#define TG_TRACES_DEFAULT_TRACES     1000
#define TG_TRACES_DEFAULT_SPANS      10000
#define TG_TRACES_DEFAULT_PER_TRACE  1000
#define TG_TRACES_LIST_MAX           1000
#define TG_TRACES_LIST_DEFAULT       50
#define TG_TRACES_FILE_MAX           (1024 * 1024)

typedef struct {
    const char  *name;        /* under location/ */
    const char  *type;
    tg_str_t     data;
} tg_traces_file_t;

typedef struct {
    tg_str_t            location;     /* no trailing '/' */
    tg_array_t         *allow;        /* tg_cidr_t; NULL: the default */
    tg_admin_listen_t   listen;
    tg_str_t            root;
    int64_t             max_traces;
    int64_t             max_spans;
    int64_t             max_spans_per_trace;
    tg_traces_store_t  *store;
    tg_traces_file_t    files[3];
} tg_traces_conf_t;

static void *tg_traces_create_conf(tg_cycle_t *cycle);
static int tg_traces_init_conf(tg_cycle_t *cycle, void *conf);
static int tg_traces_init_process(tg_cycle_t *cycle);
static void tg_traces_dump_conf(tg_cycle_t *cycle, void *conf, FILE *out);
static int tg_traces_load_file(tg_cycle_t *cycle, tg_traces_conf_t *tc,
    tg_traces_file_t *f);
static void tg_traces_store_release(void *data);
static void tg_traces_sink(const tg_span_batch_t *b, void *data);
static int tg_traces_content_handler(tg_http_request_t *r);
static int tg_traces_api_list(tg_http_request_t *r);
static int tg_traces_api_trace(tg_http_request_t *r, tg_str_t *id);
static int tg_traces_api_stats(tg_http_request_t *r);
static int tg_traces_send_error(tg_http_request_t *r, int status,
    const char *msg);
static int tg_traces_query_arg(tg_http_request_t *r, const char *name,
    u_char *buf, size_t size, tg_str_t *value);


static tg_command_t  tg_traces_commands[] = {

    { tg_string("location"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_traces_conf_t, location) },

    { tg_string("root"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_traces_conf_t, root) },

    { tg_string("allow"), TG_CONF_TAKE1 | TG_CONF_MULTI, tg_conf_set_allow,
      offsetof(tg_traces_conf_t, allow) },

    { tg_string("listen"), TG_CONF_TAKE1, tg_conf_set_admin_listen,
      offsetof(tg_traces_conf_t, listen) },

    { tg_string("max_traces"), TG_CONF_TAKE1, tg_conf_set_num,
      offsetof(tg_traces_conf_t, max_traces) },

    { tg_string("max_spans"), TG_CONF_TAKE1, tg_conf_set_num,
      offsetof(tg_traces_conf_t, max_spans) },

    { tg_string("max_spans_per_trace"), TG_CONF_TAKE1, tg_conf_set_num,
      offsetof(tg_traces_conf_t, max_spans_per_trace) },

    tg_null_command
};


static const tg_http_module_t  tg_traces_http_module = {
    { [TG_HTTP_CONTENT_PHASE] = tg_traces_content_handler }
};


tg_module_t  tg_traces_module = {
    .section = tg_string("traces"),
    .commands = tg_traces_commands,
    .create_conf = tg_traces_create_conf,
    .init_conf = tg_traces_init_conf,
    .init_process = tg_traces_init_process,
    .dump_conf = tg_traces_dump_conf,
    .ctx = &tg_traces_http_module
};


/* master only: the mapping shared by the cycles that use the same bounds */
static tg_traces_store_t  *tg_traces_shared;
static int                 tg_traces_shared_refs;

/* per worker: the viewer's own listener, or NULL */
static tg_listen_t        *tg_traces_listen;


static void *
tg_traces_create_conf(tg_cycle_t *cycle)
{
    tg_traces_conf_t  *tc;

    tc = tg_pcalloc(cycle->pool, sizeof(tg_traces_conf_t));
    if (tc == NULL) {
        return NULL;
    }
    tc->max_traces = TG_CONF_UNSET;
    tc->max_spans = TG_CONF_UNSET;
    tc->max_spans_per_trace = TG_CONF_UNSET;
    return tc;
}


static int
tg_traces_init_conf(tg_cycle_t *cycle, void *conf)
{
    size_t              i;
    tg_traces_conf_t   *tc = conf;
    tg_pool_cleanup_t  *cln;

    tg_conf_default(tc->max_traces, TG_TRACES_DEFAULT_TRACES);
    tg_conf_default(tc->max_spans, TG_TRACES_DEFAULT_SPANS);
    tg_conf_default(tc->max_spans_per_trace,
                    tg_min(TG_TRACES_DEFAULT_PER_TRACE, tc->max_spans / 2));
    if (tc->max_traces < 1 || tc->max_traces > 1000000
        || tc->max_spans < 2 || tc->max_spans > 10000000
        || tc->max_spans_per_trace < 1
        || tc->max_spans_per_trace > tc->max_spans)
    {
        snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                 "[traces] max_traces must be 1..1000000, max_spans "
                 "2..10000000 and max_spans_per_trace 1..max_spans");
        return TG_ERROR;
    }
    if (tc->location.len == 0) {
        if (tc->listen.text.len) {
            snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                     "[traces] listen needs a location (the viewer is off "
                     "without one)");
            return TG_ERROR;
        }
        return TG_OK; /* off */
    }
    if (tc->location.data[0] != '/') {
        snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                 "[traces] location \"" TG_STR_FMT "\" must start with '/'",
                 TG_STR_ARG(&tc->location));
        return TG_ERROR;
    }
    while (tc->location.len > 1
           && tc->location.data[tc->location.len - 1] == '/')
    {
        tc->location.len--;
    }
    if (tc->location.len == 1) {
        snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                 "[traces] location must not be \"/\"");
        return TG_ERROR;
    }

    if (tc->root.len == 0) {
        tg_str_set(&tc->root, "html/traces");
    }
    tc->files[0].name = "index.html";
    tc->files[0].type = "text/html; charset=utf-8";
    tc->files[1].name = "traces.css";
    tc->files[1].type = "text/css; charset=utf-8";
    tc->files[2].name = "traces.js";
    tc->files[2].type = "text/javascript; charset=utf-8";
    for (i = 0; i < tg_nelts(tc->files); i++) {
        if (tg_traces_load_file(cycle, tc, &tc->files[i]) != TG_OK) {
            return TG_ERROR;
        }
    }
    if (tg_allow_default(cycle->pool, &tc->allow) != TG_OK
        || tg_admin_listen_add(cycle, &tc->listen, "traces") != TG_OK)
    {
        return TG_ERROR;
    }

    if (tg_traces_store_same(tg_traces_shared, (uint32_t) tc->max_traces,
                             (uint32_t) tc->max_spans,
                             (uint32_t) tc->max_spans_per_trace))
    {
        tc->store = tg_traces_shared;
    } else {
        tc->store = tg_traces_store_create((uint32_t) tc->max_traces,
                                           (uint32_t) tc->max_spans,
                                           (uint32_t) tc->max_spans_per_trace);
        if (tc->store == NULL) {
            snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                     "[traces] cannot map %zu bytes for the trace store: %s",
                     tg_traces_store_size((uint32_t) tc->max_traces,
                                          (uint32_t) tc->max_spans),
                     strerror(errno));
            return TG_ERROR;
        }
        if (tg_traces_shared_refs == 0) {
            tg_traces_store_destroy(tg_traces_shared);
        }
        tg_traces_shared = tc->store;
        tg_traces_shared_refs = 0;
    }
    cln = tg_pool_cleanup_add(cycle->pool);
    if (cln == NULL) {
        return TG_ERROR;
    }
    tg_traces_shared_refs++;
    cln->handler = tg_traces_store_release;
    cln->data = tc->store;
    tg_admin_warn_open(cycle, &tc->listen, tc->allow, "traces",
                       "the trace viewer");
    return TG_OK;
}


/* A cycle is freed: unmap its store unless a newer cycle uses it. */
static void
tg_traces_store_release(void *data)
{
    if (data != tg_traces_shared) {
        tg_traces_store_destroy(data);
        return;
    }
    if (--tg_traces_shared_refs == 0) {
        tg_traces_store_destroy(tg_traces_shared);
        tg_traces_shared = NULL;
    }
}


static int
tg_traces_load_file(tg_cycle_t *cycle, tg_traces_conf_t *tc,
    tg_traces_file_t *f)
{
    int          fd;
    char         path[PATH_MAX];
    ssize_t      n;
    struct stat  st;

    if (tc->root.data[0] == '/') {
        snprintf(path, sizeof(path), TG_STR_FMT "/%s", TG_STR_ARG(&tc->root),
                 f->name);
    } else {
        snprintf(path, sizeof(path), "%s" TG_STR_FMT "/%s", cycle->prefix,
                 TG_STR_ARG(&tc->root), f->name);
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1 || fstat(fd, &st) == -1) {
        snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                 "[traces] root: cannot read \"%.300s\": %s", path,
                 strerror(errno));
        if (fd != -1) {
            close(fd);
        }
        return TG_ERROR;
    }
    if (st.st_size > TG_TRACES_FILE_MAX) {
        snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                 "[traces] root: \"%.300s\" is larger than 1 MB", path);
        close(fd);
        return TG_ERROR;
    }
    f->data.data = tg_pnalloc(cycle->pool, (size_t) st.st_size + 1);
    if (f->data.data == NULL) {
        close(fd);
        return TG_ERROR;
    }
    n = read(fd, f->data.data, (size_t) st.st_size);
    close(fd);
    if (n != st.st_size) {
        snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                 "[traces] root: short read of \"%.300s\"", path);
        return TG_ERROR;
    }
    f->data.len = (size_t) n;
    return TG_OK;
}


static int
tg_traces_init_process(tg_cycle_t *cycle)
{
    tg_traces_conf_t  *tc;

    tc = tg_module_conf(cycle, tg_traces_module);
    tg_traces_store = tc ? tc->store : NULL;
    tg_traces_listen = tg_traces_store ? tg_admin_listen_get(cycle, &tc->listen)
                                       : NULL;
    if (tg_traces_store != NULL) {
        return tg_span_sink_add(tg_traces_sink, tg_traces_store);
    }
    return TG_OK;
}


static void
tg_traces_dump_conf(tg_cycle_t *cycle, void *conf, FILE *out)
{
    tg_traces_conf_t  *tc = conf;

    if (tc->location.len == 0) {
        fprintf(out, "[traces]\nlocation = off\n");
        return;
    }
    fprintf(out, "[traces]\nlocation = " TG_STR_FMT "\n",
            TG_STR_ARG(&tc->location));
    tg_allow_dump(out, tc->allow);
    if (tc->listen.text.len) {
        fprintf(out, "listen = " TG_STR_FMT "\n",
                TG_STR_ARG(&tc->listen.text));
    } else {
        fprintf(out, "; listen: served on the [main] listeners\n");
    }
    fprintf(out,
            "root = " TG_STR_FMT "\n"
            "max_traces = %" PRId64 "\nmax_spans = %" PRId64 "\n"
            "max_spans_per_trace = %" PRId64 "\n"
            "; shared memory: %zu bytes\n",
            TG_STR_ARG(&tc->root),
            tc->max_traces, tc->max_spans, tc->max_spans_per_trace,
            tg_traces_store_size((uint32_t) tc->max_traces,
                                 (uint32_t) tc->max_spans));
}


static int
tg_traces_under_location(tg_traces_conf_t *tc, tg_str_t *path)
{
    return path->len >= tc->location.len
           && memcmp(path->data, tc->location.data, tc->location.len) == 0
           && (path->len == tc->location.len
               || path->data[tc->location.len] == '/');
}


/*
 * Span sink subscriber: the sampled spans of every batch, the gateway's
 * and those the collector received, except those of the viewer's own
 * requests (it answered them itself, on its listener or under location).
 */
static void
tg_traces_sink(const tg_span_batch_t *b, void *data)
{
    size_t              i, k;
    tg_traces_store_t  *store = data;
    tg_traces_span_t    recs[8];

    if (b->origin == &tg_traces_module) {
        return;
    }
    k = 0;
    for (i = 0; i < b->n; i++) {
        if ((b->spans[i].flags & 0x01) == 0) {
            continue;
        }
        tg_traces_span_from(&recs[k], &b->spans[i], b->service);
        recs[k++].received = b->received;
        if (k == tg_nelts(recs)) {
            tg_traces_store_add(store, recs, k);
            k = 0;
        }
    }
    if (k) {
        tg_traces_store_add(store, recs, k);
    }
}


static int
tg_traces_content_handler(tg_http_request_t *r)
{
    int                rc;
    size_t             i;
    tg_str_t           rest, id;
    tg_traces_conf_t  *tc;
    struct evbuffer   *b;
    char               loc[300];

    tc = tg_module_conf(tg_cycle, tg_traces_module);
    if (tc == NULL || tc->store == NULL) {
        return TG_DECLINED;
    }
    if (tg_traces_listen != NULL ? r->c->listen != tg_traces_listen
                                 : r->c->listen->owner != NULL)
    {
        /* served on its own listener, else on the [main] ones only */
        return TG_DECLINED;
    }
    if (!tg_traces_under_location(tc, &r->path)) {
        if (tg_traces_listen == NULL) {
            return TG_DECLINED;
        }
        /* the viewer's listener serves nothing else */
        r->route = NULL;
        return tg_traces_send_error(r, 404, "not found");
    }
    r->route = NULL;

    rc = tg_admin_access(r->c->listen, &r->c->peer.sa, &r->host, tc->allow);
    if (rc == 403) {
        tg_log_error(TG_LOG_INFO, &r->c->log, 0,
                     "traces: client %s is not allowed", r->c->peer_text);
        return tg_traces_send_error(r, 403, "this client address is not "
                                    "allowed ([traces] allow)");
    }
    if (rc != TG_OK) {
        tg_log_error(TG_LOG_INFO, &r->c->log, 0,
                     "traces: Host \"" TG_STR_FMT "\" from %s is not a "
                     "loopback name", TG_STR_ARG(&r->host), r->c->peer_text);
        return tg_traces_send_error(r, rc, "on a loopback listener the "
                                    "viewer answers only to localhost, "
                                    "127.0.0.1 or [::1] as Host");
    }
    if (!tg_str_caseeq_c(&r->method, "GET")
        && !tg_str_caseeq_c(&r->method, "HEAD"))
    {
        r->keepalive = 0;
        return tg_traces_send_error(r, 405, "only GET and HEAD");
    }

    rest.data = r->path.data + tc->location.len;
    rest.len = r->path.len - tc->location.len;

    if (rest.len == 0) {
        snprintf(loc, sizeof(loc), "Location: " TG_STR_FMT "/\r\n",
                 (int) tg_min(tc->location.len, 256),
                 (char *) tc->location.data);
        return tg_http_send_response(r, 301, "text/plain", loc, NULL);
    }
    if (rest.len == 1) {
        tg_str_set(&rest, "/index.html");
    }
    for (i = 0; i < tg_nelts(tc->files); i++) {
        if (rest.len == strlen(tc->files[i].name) + 1
            && memcmp(rest.data + 1, tc->files[i].name, rest.len - 1) == 0)
        {
            b = evbuffer_new();
            if (b == NULL) {
                return tg_http_send_response(r, 500, "text/plain", NULL, NULL);
            }
            evbuffer_add_reference(b, tc->files[i].data.data,
                                   tc->files[i].data.len, NULL, NULL);
            tg_http_send_response(r, 200, tc->files[i].type,
                           "Cache-Control: no-cache\r\n", b);
            evbuffer_free(b);
            return TG_DONE;
        }
    }

    if (rest.len == sizeof("/api/traces") - 1
        && memcmp(rest.data, "/api/traces", rest.len) == 0)
    {
        return tg_traces_api_list(r);
    }
    if (rest.len > sizeof("/api/traces/") - 1
        && memcmp(rest.data, "/api/traces/", sizeof("/api/traces/") - 1) == 0)
    {
        id.data = rest.data + sizeof("/api/traces/") - 1;
        id.len = rest.len - (sizeof("/api/traces/") - 1);
        return tg_traces_api_trace(r, &id);
    }
    if (rest.len == sizeof("/api/stats") - 1
        && memcmp(rest.data, "/api/stats", rest.len) == 0)
    {
        return tg_traces_api_stats(r);
    }
    return tg_traces_send_error(r, 404, "not found");
}


static int
tg_traces_send_json(tg_http_request_t *r, int status, struct evbuffer *b)
{
    tg_http_send_response(r, status, "application/json",
                   "Cache-Control: no-store\r\n", b);
    evbuffer_free(b);
    return TG_DONE;
}


static int
tg_traces_send_error(tg_http_request_t *r, int status, const char *msg)
{
    struct evbuffer  *b;

    b = evbuffer_new();
    if (b == NULL) {
        return tg_http_send_response(r, 500, "text/plain", NULL, NULL);
    }
    evbuffer_add_printf(b, "{\"error\":");
    tg_traces_json_str(b, (const u_char *) msg, strlen(msg));
    evbuffer_add_printf(b, "}\n");
    return tg_traces_send_json(r, status, b);
}


/*
 * Finds name=value in the query string and percent-decodes it into buf
 * ('+' is a space, as browsers encode forms). 1 when found.
 */
static int
tg_traces_query_arg(tg_http_request_t *r, const char *name, u_char *buf,
    size_t size, tg_str_t *value)
{
    size_t    nlen, n;
    u_char    c, h[2], *amp;
    tg_str_t  rest, tok;

    rest = r->query;
    nlen = strlen(name);
    while (rest.len) {
        amp = memchr(rest.data, '&', rest.len);
        tok.data = rest.data;
        tok.len = amp ? (size_t) (amp - rest.data) : rest.len;
        rest.data += tok.len + (amp ? 1 : 0);
        rest.len -= tok.len + (amp ? 1 : 0);
        if (tok.len <= nlen || tok.data[nlen] != '='
            || memcmp(tok.data, name, nlen) != 0)
        {
            continue;
        }
        n = 0;
        for (tok.data += nlen + 1, tok.len -= nlen + 1; tok.len && n < size;
             tok.data++, tok.len--)
        {
            c = tok.data[0];
            if (c == '+') {
                c = ' ';
            } else if (c == '%' && tok.len >= 3
                       && (h[0] = tg_tolower(tok.data[1]),
                           h[1] = tg_tolower(tok.data[2]),
                           tg_hex_decode_lc(&c, h, 1) == TG_OK))
            {
                tok.data += 2;
                tok.len -= 2;
            }
            buf[n++] = c;
        }
        value->data = buf;
        value->len = n;
        tg_str_trim_ows(value);
        return 1;
    }
    return 0;
}


static int
tg_traces_api_list(tg_http_request_t *r)
{
    size_t                i, n, limit;
    u_char                qbuf[128], lbuf[16];
    int64_t               num;
    tg_str_t              q, l;
    struct evbuffer      *b;
    tg_traces_conf_t     *tc;
    tg_traces_summary_t  *sums;

    tc = tg_module_conf(tg_cycle, tg_traces_module);
    tg_str_set(&q, "");
    tg_traces_query_arg(r, "q", qbuf, sizeof(qbuf), &q);
    limit = TG_TRACES_LIST_DEFAULT;
    if (tg_traces_query_arg(r, "limit", lbuf, sizeof(lbuf), &l)) {
        if (tg_atoi(l.data, l.len, &num) != TG_OK || num < 1) {
            return tg_traces_send_error(r, 400, "limit must be 1 or more");
        }
        limit = (size_t) tg_min(num, TG_TRACES_LIST_MAX);
    }
    if (q.len == 55 && q.data[2] == '-' && q.data[35] == '-') {
        /* a pasted traceparent finds its trace */
        q.data += 3;
        q.len = 32;
    }

    sums = malloc(limit * sizeof(tg_traces_summary_t));
    b = evbuffer_new();
    if (sums == NULL || b == NULL) {
        free(sums);
        if (b) {
            evbuffer_free(b);
        }
        return tg_http_send_response(r, 500, "text/plain", NULL, NULL);
    }
    n = tg_traces_store_list(tc->store, &q, sums, limit);
    evbuffer_add_printf(b, "{\"traces\":[");
    for (i = 0; i < n; i++) {
        if (i) {
            evbuffer_add(b, ",\n", 2);
        }
        tg_traces_json_summary(b, &sums[i]);
    }
    evbuffer_add_printf(b, "],\"count\":%zu,\"q\":", n);
    tg_traces_json_str(b, q.data, q.len);
    evbuffer_add_printf(b, "}\n");
    free(sums);
    return tg_traces_send_json(r, 200, b);
}


static int
tg_traces_api_trace(tg_http_request_t *r, tg_str_t *id)
{
    u_char                tid[16];
    ssize_t               n, i;
    tg_traces_conf_t     *tc;
    tg_traces_span_t     *spans;
    tg_traces_summary_t   sum;
    struct evbuffer      *b;

    tc = tg_module_conf(tg_cycle, tg_traces_module);
    if (id->len != 32 || tg_hex_decode_lc(tid, id->data, 16) != TG_OK) {
        return tg_traces_send_error(r, 400,
                                    "a trace id is 32 lowercase hex digits");
    }
    n = tg_traces_store_get(tc->store, tid, &spans, &sum);
    if (n < 0) {
        return tg_http_send_response(r, 500, "text/plain", NULL, NULL);
    }
    if (n == 0) {
        return tg_traces_send_error(r, 404, "no such trace (yet)");
    }
    b = evbuffer_new();
    if (b == NULL) {
        free(spans);
        return tg_http_send_response(r, 500, "text/plain", NULL, NULL);
    }
    evbuffer_add_printf(b, "{\"trace\":");
    tg_traces_json_summary(b, &sum);
    evbuffer_add_printf(b, ",\"spans\":[");
    for (i = 0; i < n; i++) {
        if (i) {
            evbuffer_add(b, ",\n", 2);
        }
        tg_traces_json_span(b, &spans[i], sum.start_ns);
    }
    evbuffer_add_printf(b, "]}\n");
    free(spans);
    return tg_traces_send_json(r, 200, b);
}


static int
tg_traces_api_stats(tg_http_request_t *r)
{
    tg_traces_conf_t   *tc;
    tg_traces_stats_t   st;
    struct evbuffer    *b;

    tc = tg_module_conf(tg_cycle, tg_traces_module);
    tg_traces_store_stats(tc->store, &st);
    b = evbuffer_new();
    if (b == NULL) {
        return tg_http_send_response(r, 500, "text/plain", NULL, NULL);
    }
    evbuffer_add_printf(b,
                        "{\"traces\":%u,\"spans\":%u,\"max_traces\":%" PRId64
                        ",\"max_spans\":%" PRId64 ",\"spans_added\":%" PRIu64
                        ",\"spans_dropped\":%" PRIu64
                        ",\"traces_evicted\":%" PRIu64
                        ",\"shared_memory_bytes\":%zu}\n",
                        st.traces, st.spans, tc->max_traces, tc->max_spans,
                        st.spans_added, st.spans_dropped, st.traces_evicted,
                        tg_traces_store_size((uint32_t) tc->max_traces,
                                             (uint32_t) tc->max_spans));
    return tg_traces_send_json(r, 200, b);
}
