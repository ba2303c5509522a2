#include <tg_config.h>
#include <tg_core.h>
#include <tg_cycle.h>
#include <tg_http.h>
#include <tg_span_sink.h>
#include <tg_collector_limits.h>
#include <tg_collector_json.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <zlib.h>
#include <openssl/crypto.h>

#include <opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h>


/*
 * [collector]: an OTLP/HTTP receiver for traces (POST /v1/traces, binary
 * protobuf or JSON, optionally gzip), so that the services behind the
 * gateway can report their spans to it. Every worker binds the address
 * with SO_REUSEPORT and serves it with libevent's evhttp on its own loop;
 * received spans go to the shared trace store and to this worker's
 * exporter ring. Answers follow the OTLP/HTTP specification: 200 with an
 * ExportTraceServiceResponse (partial_success when spans were rejected),
 * 400 with a google.rpc.Status for bad input, 415 for other content types.
 *
 * The receiver shares the loop with the proxy, and what a request costs
 * the loop is bounded before it is decoded: clients outside allow get 403
 * and, with require_header, clients without the header 401, before the
 * body is looked at; the objects of a request are counted before
 * protobuf-c unpacks it and as the JSON reader parses it (413 over a
 * limit, tg_collector_limits.h), and a gzip body is counted as it inflates
 * and never inflates past max_body_size (413). The defaults keep the
 * largest request they admit to a few ms of the loop (README).
 */

/* received spans stored at once (one lock of the store) */
#define TG_COLLECTOR_BATCH     16

/*
 * Defaults of max_body_size (413 over it, compressed or inflated) and of
 * the max_* counts per request (413 over them): the largest request they
 * admit takes a few ms of the loop (bench/collector_limits.pl; README has
 * the figures): decoding 1 MiB of OTLP/JSON, or 512 spans of 16
 * attributes, takes 3 to 6 ms of CPU.
 */
#define TG_COLLECTOR_BODY_MAX            (1024 * 1024)
#define TG_COLLECTOR_MAX_RESOURCE_SPANS  32
#define TG_COLLECTOR_MAX_SCOPE_SPANS     128
#define TG_COLLECTOR_MAX_SPANS           512    /* an SDK's default batch */
#define TG_COLLECTOR_MAX_EVENTS          512
#define TG_COLLECTOR_MAX_LINKS           128
#define TG_COLLECTOR_MAX_ATTRIBUTES      8192

/* largest max_body_size: zlib counts in uInt; more is a config error */
#define TG_COLLECTOR_BODY_SIZE_LIMIT     (1024 * 1024 * 1024)

/* largest value of a max_* setting: a config error above */
#define TG_COLLECTOR_COUNT_LIMIT         1000000

/* arena block for an unpacked protobuf request */
#define TG_COLLECTOR_PB_BLOCK            (64 * 1024)

/* first inflate buffer (then doubled, counting at each step) */
#define TG_COLLECTOR_INFLATE_FIRST       4096

typedef struct {
    tg_str_t                 listen;
    int64_t                  max_body_size;
    int                      forward;
    tg_array_t              *allow;       /* tg_cidr_t; NULL: the default */
    tg_array_t              *headers;     /* tg_keyval_t: require_header */
    int64_t                  max[TG_COLLECTOR_FIELDS]; /* max_* settings */
    struct sockaddr_storage  addr;
    socklen_t                addrlen;
} tg_collector_conf_t;

/* one request being decoded */
typedef struct {
    tg_collector_conf_t     *cc;
    const char              *service;     /* of the current resource */
    size_t                   accepted;
    size_t                   rejected;
    char                     reason[128]; /* first rejection */
    tg_collector_limits_t    lim;
    size_t                   nspans;
    const char              *batch_src;     /* x->service of spans[] */
    char                     batch_service[256]; /* its copy: the decoded
                                               message may be freed before
                                               the last flush */
    tg_span_t                spans[TG_COLLECTOR_BATCH];
} tg_collector_ctx_t;

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest
    tg_collector_req_pb_t;
typedef Opentelemetry__Proto__Trace__V1__Span         tg_collector_span_pb_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue    tg_collector_kv_pb_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue    tg_collector_any_pb_t;

static void *tg_collector_create_conf(tg_cycle_t *cycle);
static int tg_collector_init_conf(tg_cycle_t *cycle, void *conf);
static int tg_collector_init_process(tg_cycle_t *cycle);
static void tg_collector_exit_process(tg_cycle_t *cycle);
static void tg_collector_dump_conf(tg_cycle_t *cycle, void *conf, FILE *out);
static char *tg_collector_set_header(tg_conf_t *cf, tg_command_t *cmd,
    void *conf);
static int tg_collector_loopback(struct sockaddr *sa);
static int tg_collector_socket(tg_collector_conf_t *cc, int do_listen);
static void tg_collector_handler(struct evhttp_request *req, void *arg);
static void tg_collector_request(struct evhttp_request *req,
    tg_collector_conf_t *cc);
static uint64_t tg_collector_cpu_ns(void);
static int tg_collector_allowed(struct evhttp_request *req,
    tg_collector_conf_t *cc);
static int tg_collector_authorized(struct evhttp_request *req,
    tg_collector_conf_t *cc);
static void tg_collector_challenge(struct evhttp_request *req,
    tg_collector_conf_t *cc);
static void tg_collector_refuse(struct evhttp_request *req, int status,
    int json, tg_collector_ctx_t *x, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int tg_collector_gunzip(tg_collector_ctx_t *x, int json,
    const u_char *in, size_t len, u_char **out, size_t *outlen);
static int tg_collector_count_prefix(tg_collector_ctx_t *x, int json,
    const u_char *p, size_t len);
static void *tg_collector_pb_alloc(void *pool, size_t size);
static void tg_collector_pb_free(void *pool, void *p);
static int tg_collector_decode_pb(tg_collector_ctx_t *x, const u_char *body,
    size_t len, char *err, size_t errlen);
static int tg_collector_decode_json(tg_collector_ctx_t *x,
    const u_char *body, size_t len, char *err, size_t errlen);
static void tg_collector_dropped(tg_span_t *s, uint64_t n);
static void tg_collector_span(tg_collector_ctx_t *x, tg_span_t *s);
static void tg_collector_flush(tg_collector_ctx_t *x);
static void tg_collector_reply(struct evhttp_request *req, int status,
    int json, tg_collector_ctx_t *x, const char *msg);


static tg_command_t  tg_collector_commands[] = {

    { tg_string("listen"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_collector_conf_t, listen) },

    { tg_string("max_body_size"), TG_CONF_TAKE1, tg_conf_set_size,
      offsetof(tg_collector_conf_t, max_body_size) },

    { tg_string("forward"), TG_CONF_TAKE1, tg_conf_set_flag,
      offsetof(tg_collector_conf_t, forward) },

    { tg_string("allow"), TG_CONF_TAKE1 | TG_CONF_MULTI, tg_conf_set_allow,
      offsetof(tg_collector_conf_t, allow) },

    { tg_string("require_header"),
      TG_CONF_TAKE1 | TG_CONF_MULTI | TG_CONF_SECRET,
      tg_collector_set_header, offsetof(tg_collector_conf_t, headers) },

    { tg_string("max_resource_spans"), TG_CONF_TAKE1, tg_conf_set_num,
      offsetof(tg_collector_conf_t, max[TG_COLLECTOR_RESOURCE_SPANS]) },

    { tg_string("max_scope_spans"), TG_CONF_TAKE1, tg_conf_set_num,
      offsetof(tg_collector_conf_t, max[TG_COLLECTOR_SCOPE_SPANS]) },

    { tg_string("max_spans"), TG_CONF_TAKE1, tg_conf_set_num,
      offsetof(tg_collector_conf_t, max[TG_COLLECTOR_SPANS]) },

    { tg_string("max_events"), TG_CONF_TAKE1, tg_conf_set_num,
      offsetof(tg_collector_conf_t, max[TG_COLLECTOR_EVENTS]) },

    { tg_string("max_links"), TG_CONF_TAKE1, tg_conf_set_num,
      offsetof(tg_collector_conf_t, max[TG_COLLECTOR_LINKS]) },

    { tg_string("max_attributes"), TG_CONF_TAKE1, tg_conf_set_num,
      offsetof(tg_collector_conf_t, max[TG_COLLECTOR_ATTRIBUTES]) },

    tg_null_command
};


tg_module_t  tg_collector_module = {
    .section = tg_string("collector"),
    .commands = tg_collector_commands,
    .create_conf = tg_collector_create_conf,
    .init_conf = tg_collector_init_conf,
    .init_process = tg_collector_init_process,
    .exit_process = tg_collector_exit_process,
    .dump_conf = tg_collector_dump_conf
};


/* the settings of the max_* counts, by count */
static const char  *tg_collector_max_names[TG_COLLECTOR_FIELDS] = {
    "max_resource_spans", "max_scope_spans", "max_spans", "max_events",
    "max_links", "max_attributes"
};

static const int64_t  tg_collector_max_defaults[TG_COLLECTOR_FIELDS] = {
    TG_COLLECTOR_MAX_RESOURCE_SPANS, TG_COLLECTOR_MAX_SCOPE_SPANS,
    TG_COLLECTOR_MAX_SPANS, TG_COLLECTOR_MAX_EVENTS, TG_COLLECTOR_MAX_LINKS,
    TG_COLLECTOR_MAX_ATTRIBUTES
};

/* this worker's receiver */
static struct evhttp  *tg_collector_http;

/* requests this worker refused (logged with each refusal) */
static uint64_t  tg_collector_refused;


static void *
tg_collector_create_conf(tg_cycle_t *cycle)
{
    int                   i;
    tg_collector_conf_t  *cc;

    cc = tg_pcalloc(cycle->pool, sizeof(tg_collector_conf_t));
    if (cc == NULL) {
        return NULL;
    }
    cc->max_body_size = TG_CONF_UNSET;
    cc->forward = TG_CONF_UNSET;
    for (i = 0; i < TG_COLLECTOR_FIELDS; i++) {
        cc->max[i] = TG_CONF_UNSET;
    }
    return cc;
}


static int
tg_collector_init_conf(tg_cycle_t *cycle, void *conf)
{
    int                   i, fd;
    tg_collector_conf_t  *cc = conf;

    tg_conf_default(cc->max_body_size, TG_COLLECTOR_BODY_MAX);
    tg_conf_default(cc->forward, 1);
    for (i = 0; i < TG_COLLECTOR_FIELDS; i++) {
        tg_conf_default(cc->max[i], tg_collector_max_defaults[i]);
    }
    if (cc->listen.len == 0 || tg_str_caseeq_c(&cc->listen, "off")) {
        cc->listen.len = 0;
        return TG_OK;
    }
    if (cc->max_body_size <= 0
        || cc->max_body_size > TG_COLLECTOR_BODY_SIZE_LIMIT)
    {
        snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                 "[collector] max_body_size must be from 1 to %d",
                 TG_COLLECTOR_BODY_SIZE_LIMIT);
        return TG_ERROR;
    }
    for (i = 0; i < TG_COLLECTOR_FIELDS; i++) {
        if (cc->max[i] > TG_COLLECTOR_COUNT_LIMIT) {
            snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                     "[collector] %s must be at most %d",
                     tg_collector_max_names[i], TG_COLLECTOR_COUNT_LIMIT);
            return TG_ERROR;
        }
    }
    if (tg_parse_addr(cycle->pool, &cc->listen, 0, &cc->addr, &cc->addrlen)
        != TG_OK)
    {
        snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                 "[collector] listen: \"" TG_STR_FMT "\" is not an address",
                 TG_STR_ARG(&cc->listen));
        return TG_ERROR;
    }
    if (tg_allow_default(cycle->pool, &cc->allow) != TG_OK) {
        return TG_ERROR;
    }

    /*
     * Whoever reaches the receiver can add spans to any trace by its id:
     * say so when it is reachable from other hosts and allow lets them in
     * (a warning, since a private network may be meant).
     */
    if (!tg_collector_loopback((struct sockaddr *) &cc->addr)
        && tg_allow_open(cc->allow))
    {
        tg_log_error(TG_LOG_WARN, &tg_log_global, 0,
                     "[collector] listen " TG_STR_FMT " is not a loopback "
                     "address and allow admits clients outside loopback: "
                     "they can add spans to any trace%s",
                     TG_STR_ARG(&cc->listen),
                     cc->headers ? "" : " (no require_header is set)");
    }

    /*
     * A trial bind finds an address owned by another program now, not in
     * the workers. SO_REUSEPORT lets it pass while our own workers hold it.
     */
    fd = tg_collector_socket(cc, 0);
    if (fd == -1) {
        snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                 "[collector] listen " TG_STR_FMT ": %s",
                 TG_STR_ARG(&cc->listen), strerror(errno));
        return TG_ERROR;
    }
    close(fd);
    return TG_OK;
}


/*
 * require_header = NAME VALUE: NAME is a header field name, VALUE the rest
 * of the line (OWS trimmed), compared exactly. Errors never quote the
 * value, which is a secret.
 */
static char *
tg_collector_set_header(tg_conf_t *cf, tg_command_t *cmd, void *conf)
{
    size_t        i;
    tg_str_t      name, value;
    tg_keyval_t  *kv;
    tg_array_t  **a;

    name = cf->value;
    tg_str_trim_ows(&name);
    for (i = 0; i < name.len && name.data[i] != ' ' && name.data[i] != '\t';
         i++)
    {
        if (name.data[i] <= 0x20 || name.data[i] >= 0x7f
            || strchr("\"(),/:;<=>?@[\\]{}", name.data[i]) != NULL)
        {
            tg_conf_error(cf, "require_header: the header name is not a "
                          "token (RFC 9110 5.6.2); expected \"NAME VALUE\"");
            return "invalid value";
        }
    }
    value.data = name.data + i;
    value.len = name.len - i;
    name.len = i;
    tg_str_trim_ows(&value);
    if (name.len == 0 || value.len == 0) {
        tg_conf_error(cf, "require_header: expected \"NAME VALUE\"");
        return "invalid value";
    }

    a = (tg_array_t **) ((u_char *) conf + cmd->offset);
    if (*a == NULL) {
        *a = tg_array_create(cf->pool, 2, sizeof(tg_keyval_t));
        if (*a == NULL) {
            return "out of memory for";
        }
    }
    kv = tg_array_push(*a);
    if (kv == NULL
        || tg_pstrcopy(cf->pool, &kv->key, name.data, name.len) != TG_OK
        || tg_pstrcopy(cf->pool, &kv->value, value.data, value.len) != TG_OK)
    {
        return "out of memory for";
    }
    return TG_CONF_OK;
}


static void
tg_collector_dump_conf(tg_cycle_t *cycle, void *conf, FILE *out)
{
    int                   i;
    size_t                k;
    tg_keyval_t          *kv;
    tg_collector_conf_t  *cc = conf;

    fprintf(out, "[collector]\nlisten = " TG_STR_FMT "\n",
            cc->listen.len ? (int) cc->listen.len : 3,
            cc->listen.len ? (char *) cc->listen.data : "off");
    if (cc->listen.len == 0) {
        return;
    }
    fprintf(out, "max_body_size = %" PRId64 "\nforward = %s\n",
            cc->max_body_size, cc->forward ? "on" : "off");
    tg_allow_dump(out, cc->allow);
    /* values are secrets: names only */
    kv = cc->headers ? cc->headers->elts : NULL;
    for (k = 0; kv && k < cc->headers->nelts; k++) {
        fprintf(out, "require_header = " TG_STR_FMT " <redacted>\n",
                TG_STR_ARG(&kv[k].key));
    }
    for (i = 0; i < TG_COLLECTOR_FIELDS; i++) {
        fprintf(out, "%s = %" PRId64 "\n", tg_collector_max_names[i],
                cc->max[i]);
    }
}


/* Whether sa is 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104. */
static int
tg_collector_loopback(struct sockaddr *sa)
{
    const u_char  *a;

    if (sa->sa_family == AF_INET) {
        a = (const u_char *) &((struct sockaddr_in *) sa)->sin_addr;
        return a[0] == 127;
    }
    if (sa->sa_family != AF_INET6) {
        return 0;
    }
    a = (const u_char *) &((struct sockaddr_in6 *) sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK((const struct in6_addr *) a)
           || (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *) a)
               && a[12] == 127);
}


/* A bound (and when asked, listening) nonblocking SO_REUSEPORT socket. */
static int
tg_collector_socket(tg_collector_conf_t *cc, int do_listen)
{
    int  fd, on, err;

    fd = socket(cc->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd == -1) {
        return -1;
    }
    on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1
        || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1
        || bind(fd, (struct sockaddr *) &cc->addr, cc->addrlen) == -1
        || (do_listen && listen(fd, 511) == -1))
    {
        err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}


static int
tg_collector_init_process(tg_cycle_t *cycle)
{
    int                   fd;
    tg_collector_conf_t  *cc;

    cc = tg_module_conf(cycle, tg_collector_module);
    if (cc == NULL || cc->listen.len == 0) {
        return TG_OK;
    }
    fd = tg_collector_socket(cc, 1);
    if (fd == -1) {
        /* the gateway goes on without the receiver in this worker */
        tg_log_error(TG_LOG_ERR, &tg_log_global, errno,
                     "collector: cannot listen on " TG_STR_FMT,
                     TG_STR_ARG(&cc->listen));
        return TG_OK;
    }
    tg_collector_http = evhttp_new(tg_event_worker.base);
    if (tg_collector_http == NULL
        || evhttp_accept_socket(tg_collector_http, fd) != 0)
    {
        tg_log_error(TG_LOG_ERR, &tg_log_global, 0,
                     "collector: evhttp set-up failed");
        if (tg_collector_http) {
            evhttp_free(tg_collector_http);
            tg_collector_http = NULL;
        }
        close(fd);
        return TG_OK;
    }
    evhttp_set_max_body_size(tg_collector_http, (ev_ssize_t) cc->max_body_size);
    evhttp_set_max_headers_size(tg_collector_http, 32 * 1024);
    evhttp_set_timeout(tg_collector_http, 30);
    evhttp_set_allowed_methods(tg_collector_http,
                               EVHTTP_REQ_GET | EVHTTP_REQ_POST
                               | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT
                               | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS);
    evhttp_set_gencb(tg_collector_http, tg_collector_handler, cc);
    return TG_OK;
}


static void
tg_collector_exit_process(tg_cycle_t *cycle)
{
    if (tg_collector_http) {
        evhttp_free(tg_collector_http);
        tg_collector_http = NULL;
    }
}


static void
tg_collector_handler(struct evhttp_request *req, void *arg)
{
    tg_collector_request(req, arg);
}


static int
tg_collector_media_is(const char *ct, const char *type)
{
    size_t  n;

    n = strlen(type);
    while (*ct == ' ' || *ct == '\t') {
        ct++;
    }
    return strncasecmp(ct, type, n) == 0
           && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}


static void
tg_collector_request(struct evhttp_request *req, tg_collector_conf_t *cc)
{
    int                   json, rc, i;
    char                  err[256];
    u_char               *body, *plain;
    size_t                len, plain_len, sent;
    uint64_t              start;
    const char           *uri, *path_end, *ct, *ce;
    struct evbuffer      *in;
    struct evkeyvalq     *h;
    tg_collector_ctx_t   *x;

    /* errors go in the encoding the client sent (OTLP/HTTP "Failures") */
    h = evhttp_request_get_input_headers(req);
    ct = evhttp_find_header(h, "Content-Type");
    json = ct && tg_collector_media_is(ct, "application/json");

    if (!tg_collector_allowed(req, cc)) {
        tg_collector_refuse(req, 403, json, NULL, "the client is not in "
                            "[collector] allow");
        return;
    }
    if (!tg_collector_authorized(req, cc)) {
        tg_collector_challenge(req, cc);
        tg_collector_refuse(req, 401, json, NULL, "a required header is "
                            "missing or wrong");
        return;
    }

    uri = evhttp_request_get_uri(req);
    path_end = strchr(uri, '?');
    len = path_end ? (size_t) (path_end - uri) : strlen(uri);
    if (len != sizeof("/v1/traces") - 1 || memcmp(uri, "/v1/traces", len)) {
        tg_collector_reply(req, 404, json, NULL, "only /v1/traces is served");
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          "POST");
        tg_collector_reply(req, 405, json, NULL, "POST only");
        return;
    }
    if (!json && (ct == NULL
                  || !tg_collector_media_is(ct, "application/x-protobuf")))
    {
        tg_collector_reply(req, 415, 0, NULL,
                           "Content-Type must be application/x-protobuf or "
                           "application/json");
        return;
    }

    start = (tg_log_global.level >= TG_LOG_DEBUG) ? tg_collector_cpu_ns() : 0;
    x = calloc(1, sizeof(tg_collector_ctx_t));
    if (x == NULL) {
        tg_collector_reply(req, 503, json, NULL, "out of memory");
        return;
    }
    x->cc = cc;
    for (i = 0; i < TG_COLLECTOR_FIELDS; i++) {
        x->lim.max[i] = (size_t) cc->max[i];
    }
    tg_collector_limits_reset(&x->lim);

    in = evhttp_request_get_input_buffer(req);
    len = evbuffer_get_length(in);
    sent = len;
    body = len ? evbuffer_pullup(in, -1) : (u_char *) "";
    plain = NULL;
    ce = evhttp_find_header(h, "Content-Encoding");
    if (ce && strcasecmp(ce, "gzip") == 0) {
        rc = tg_collector_gunzip(x, json, body, len, &plain, &plain_len);
        if (rc == TG_ERROR) {
            tg_collector_reply(req, 400, json, NULL,
                               "the gzip body does not inflate");
            goto done;
        }
        if (rc == TG_DECLINED) {
            if (x->lim.over < 0) {
                tg_collector_refuse(req, 413, json, x, "the gzip body "
                                    "inflates to more than max_body_size "
                                    "(%" PRId64 " bytes)", cc->max_body_size);
            } else {
                tg_collector_refuse(req, 413, json, x, NULL);
            }
            goto done;
        }
        body = plain;
        len = plain_len;
    } else if (ce && strcasecmp(ce, "identity") != 0) {
        tg_collector_reply(req, 415, json, NULL,
                           "Content-Encoding must be gzip or identity");
        goto done;
    }

    err[0] = '\0';
    rc = json ? tg_collector_decode_json(x, body, len, err, sizeof(err))
              : tg_collector_decode_pb(x, body, len, err, sizeof(err));
    tg_collector_flush(x);
    if (rc == TG_DECLINED) {
        tg_collector_refuse(req, 413, json, x, NULL);
    } else if (rc != TG_OK) {
        tg_collector_reply(req, 400, json, NULL, err);
    } else {
        tg_collector_reply(req, 200, json, x, NULL);
    }

done:
    if (start != 0) {
        tg_log_debug(&tg_log_global, "collector: %zu bytes (%zu decoded), "
                     "%zu spans accepted, %zu rejected, in %.3f ms of CPU",
                     sent, len, x->accepted, x->rejected,
                     (double) (tg_collector_cpu_ns() - start) / 1e6);
    }
    free(plain);
    free(x);
}


/* CPU time of this thread in ns: what a request cost the loop, unlike the
   wall clock, whatever else ran on the core */
static uint64_t
tg_collector_cpu_ns(void)
{
    struct timespec  ts;

    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) {
        return 1;
    }
    return (uint64_t) ts.tv_sec * 1000000000 + (uint64_t) ts.tv_nsec;
}


/*
 * The peer is in allow. evhttp gives the address the connection came from
 * (X-Forwarded-For is never looked at); an IPv4 client of an IPv6 socket
 * (::ffff:a.b.c.d) is matched as the IPv4 address it is.
 */
static int
tg_collector_allowed(struct evhttp_request *req, tg_collector_conf_t *cc)
{
    const u_char               *a;
    struct sockaddr_in          sin;
    const struct sockaddr      *sa;
    struct evhttp_connection   *evcon;

    evcon = evhttp_request_get_connection(req);
    sa = evcon ? evhttp_connection_get_addr(evcon) : NULL;
    if (sa == NULL) {
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        a = (const u_char *) &((const struct sockaddr_in6 *) sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *) a)) {
            memset(&sin, 0, sizeof(sin));
            sin.sin_family = AF_INET;
            memcpy(&sin.sin_addr, a + 12, 4);
            sa = (const struct sockaddr *) &sin;
        }
    }
    return tg_cidr_match(cc->allow, (struct sockaddr *) sa);
}


/*
 * Every header named by require_header carries one of the values given
 * for that name (lines with the same name are alternatives, as during a
 * change of keys; different names are all required). Each value is
 * compared in constant time (CRYPTO_memcmp) over the configured length
 * whatever the received one: the time tells at most whether the lengths
 * are equal. Every configured value is compared, so neither tells which
 * line matched.
 */
static int
tg_collector_authorized(struct evhttp_request *req, tg_collector_conf_t *cc)
{
    int                  ok, all;
    size_t               i, k, vlen;
    tg_keyval_t         *kv;
    const u_char        *v;
    struct evkeyval     *e;
    struct evkeyvalq    *h;

    if (cc->headers == NULL) {
        return 1;
    }
    h = evhttp_request_get_input_headers(req);
    kv = cc->headers->elts;
    all = 1;
    for (i = 0; i < cc->headers->nelts; i++) {
        /* a name's first line decides for all of its lines */
        for (k = 0; k < i; k++) {
            if (tg_str_caseeq(&kv[k].key, &kv[i].key)) {
                break;
            }
        }
        if (k < i) {
            continue;
        }
        ok = 0;
        for (k = i; k < cc->headers->nelts; k++) {
            if (!tg_str_caseeq(&kv[k].key, &kv[i].key)) {
                continue;
            }
            for (e = h->tqh_first; e != NULL; e = e->next.tqe_next) {
                if (strlen(e->key) != kv[k].key.len
                    || strncasecmp(e->key, (char *) kv[k].key.data,
                                   kv[k].key.len) != 0)
                {
                    continue;
                }
                vlen = strlen(e->value);
                v = (vlen == kv[k].value.len) ? (const u_char *) e->value
                                              : kv[k].value.data;
                ok |= (CRYPTO_memcmp(v, kv[k].value.data, kv[k].value.len)
                       == 0) & (vlen == kv[k].value.len);
            }
        }
        all &= ok;
    }
    return all;
}


/*
 * A 401 names a scheme to use (RFC 9110 11.6.1): the first word of the
 * first required Authorization value that has one ("Bearer"); the
 * credentials after it stay unsaid. Nothing when no Authorization is
 * required.
 */
static void
tg_collector_challenge(struct evhttp_request *req, tg_collector_conf_t *cc)
{
    char          value[96];
    size_t        i;
    u_char       *sp;
    tg_keyval_t  *kv;

    kv = cc->headers->elts;
    for (i = 0; i < cc->headers->nelts; i++) {
        if (!tg_str_caseeq_c(&kv[i].key, "authorization")) {
            continue;
        }
        sp = memchr(kv[i].value.data, ' ', kv[i].value.len);
        if (sp == NULL || sp - kv[i].value.data > 32) {
            continue;
        }
        snprintf(value, sizeof(value), "%.*s realm=\"tracegate collector\"",
                 (int) (sp - kv[i].value.data), (char *) kv[i].value.data);
        evhttp_add_header(evhttp_request_get_output_headers(req),
                          "WWW-Authenticate", value);
        return;
    }
}


/*
 * A refusal: the reply, and a log line with the client and this worker's
 * count of refusals. For 413 without fmt the message names the count that
 * went over (x->lim.over) and its setting.
 */
static void
tg_collector_refuse(struct evhttp_request *req, int status, int json,
    tg_collector_ctx_t *x, const char *fmt, ...)
{
    int                        over;
    char                      *peer, msg[192];
    va_list                    args;
    ev_uint16_t                port;
    struct evhttp_connection  *evcon;

    if (fmt != NULL) {
        va_start(args, fmt);
        vsnprintf(msg, sizeof(msg), fmt, args);
        va_end(args);
    } else {
        over = x->lim.over;
        if (over == TG_COLLECTOR_FIELDS) {
            snprintf(msg, sizeof(msg), "the request holds more fields or "
                     "values (%zu) than its spans, events, links and "
                     "attributes account for", x->lim.n[over]);
        } else {
            snprintf(msg, sizeof(msg), "the request holds more than %zu %s "
                     "(%s)", x->lim.max[over], tg_collector_count_name(over),
                     tg_collector_max_names[over]);
        }
    }

    peer = NULL;
    port = 0;
    evcon = evhttp_request_get_connection(req);
    if (evcon != NULL) {
        evhttp_connection_get_peer(evcon, &peer, &port);
    }
    tg_collector_refused++;
    tg_log_error(status == 413 ? TG_LOG_WARN : TG_LOG_INFO, &tg_log_global,
                 0, "collector: %d for %s: %s (%" PRIu64 " refused by this "
                 "worker)", status, peer ? peer : "?", msg,
                 tg_collector_refused);
    tg_collector_reply(req, status, json, NULL, msg);
}


/*
 * Inflates a gzip (RFC 1952) body into a malloc'ed buffer: TG_OK with
 * *out, TG_ERROR when it does not inflate, TG_DECLINED when it inflates to
 * more than max_body_size (never inflated past it: the buffer stops one
 * byte above) or when what it inflated so far is over a limit
 * (x->lim.over): a protobuf body is counted at every doubling of the
 * buffer, so one that packs many objects into few bytes is refused after
 * the first of them, and the counting costs at most twice the pre-pass.
 */
static int
tg_collector_gunzip(tg_collector_ctx_t *x, int json, const u_char *in,
    size_t len, u_char **out, size_t *outlen)
{
    int        rc, zrc;
    u_char    *buf, *nbuf;
    size_t     cap, max;
    z_stream   z;

    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        return TG_ERROR;
    }
    max = (size_t) x->cc->max_body_size + 1;
    cap = tg_min(tg_max(len * 4, TG_COLLECTOR_INFLATE_FIRST), max);
    buf = malloc(cap);
    if (buf == NULL) {
        inflateEnd(&z);
        return TG_ERROR;
    }
    rc = TG_ERROR;
    z.next_in = (Bytef *) in;
    z.avail_in = (uInt) len;
    z.next_out = buf;
    z.avail_out = (uInt) cap;
    for ( ;; ) {
        zrc = inflate(&z, Z_NO_FLUSH);
        if (zrc == Z_STREAM_END) {
            if (z.total_out == max) {
                rc = TG_DECLINED;
                goto failed;
            }
            *out = buf;
            *outlen = z.total_out;
            inflateEnd(&z);
            return TG_OK;
        }
        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            goto failed;
        }
        if (z.avail_out != 0) {
            if (z.avail_in == 0 || zrc == Z_BUF_ERROR) {
                goto failed; /* truncated, or no progress */
            }
            continue;
        }
        if (cap == max) {
            rc = TG_DECLINED;
            goto failed;
        }
        if (tg_collector_count_prefix(x, json, buf, z.total_out) != TG_OK) {
            rc = TG_DECLINED;
            goto failed;
        }
        cap = tg_min(cap * 2, max);
        nbuf = realloc(buf, cap);
        if (nbuf == NULL) {
            goto failed;
        }
        buf = nbuf;
        z.next_out = buf + z.total_out;
        z.avail_out = (uInt) (cap - z.total_out);
    }

failed:
    free(buf);
    inflateEnd(&z);
    return rc;
}


/*
 * Counts the first len bytes of a protobuf body being inflated (the
 * pre-pass, partial). TG_DECLINED when they are over a limit already;
 * anything else (a body that turns out malformed) is left to the decoding
 * of the whole body. A JSON body is counted only as it is parsed, once it
 * is whole: parsing every prefix would double the cost of every gzip JSON
 * request to save the inflating of a bomb, which max_body_size bounds.
 */
static int
tg_collector_count_prefix(tg_collector_ctx_t *x, int json, const u_char *p,
    size_t len)
{
    char  err[128];

    if (json) {
        return TG_OK;
    }
    return tg_collector_pb_scan(&x->lim, p, len, 1, err, sizeof(err))
           == TG_DECLINED ? TG_DECLINED : TG_OK;
}


/*
 * One received span: checked (16-byte trace id and 8-byte span id, not
 * zero), then published to the span sink in batches of one resource's
 * spans. s->name and ids are filled by the caller.
 */
static void
tg_collector_span(tg_collector_ctx_t *x, tg_span_t *s)
{
    static u_char  zero[16];

    if (memcmp(s->trace_id, zero, 16) == 0 || memcmp(s->span_id, zero, 8) == 0)
    {
        if (x->rejected++ == 0) {
            snprintf(x->reason, sizeof(x->reason),
                     "a span has an invalid trace or span id");
        }
        return;
    }
    x->accepted++;
    if (x->nspans && x->batch_src != x->service) {
        tg_collector_flush(x);
    }
    if (x->nspans == 0) {
        x->batch_src = x->service;
        snprintf(x->batch_service, sizeof(x->batch_service), "%s",
                 x->service);
    }
    x->spans[x->nspans++] = *s;
    if (x->nspans == TG_COLLECTOR_BATCH) {
        tg_collector_flush(x);
    }
}


/*
 * Hands the spans gathered so far to the span sink: the trace store keeps
 * them, the exporter forwards them unless [collector] forward is off.
 */
static void
tg_collector_flush(tg_collector_ctx_t *x)
{
    tg_str_t         service;
    tg_span_batch_t  b;

    if (x->nspans == 0) {
        return;
    }
    service.data = (u_char *) x->batch_service;
    service.len = strlen(x->batch_service);
    b.spans = x->spans;
    b.n = x->nspans;
    b.service = &service;
    b.origin = &tg_collector_module;
    b.received = 1;
    b.local = !x->cc->forward;
    tg_span_publish(&b);
    x->nspans = 0;
}


/*
 * Counts n more dropped attributes: those the sender dropped (its
 * dropped_attributes_count), or one that is not kept here. The count
 * stops at UINT16_MAX.
 */
static void
tg_collector_dropped(tg_span_t *s, uint64_t n)
{
    s->dropped_attrs = (uint16_t) tg_min(n + s->dropped_attrs,
                                         (uint64_t) UINT16_MAX);
}


static void
tg_collector_add_pb_attr(tg_span_t *s, const tg_collector_kv_pb_t *kv)
{
    int                           n;
    char                          num[40];
    const tg_collector_any_pb_t  *v;

    v = kv->value;
    if (kv->key == NULL || v == NULL) {
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        tg_span_add_str(s, kv->key, (u_char *) v->string_value,
                        strlen(v->string_value));
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        tg_span_add_bool(s, kv->key, v->bool_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        tg_span_add_int(s, kv->key, v->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        n = snprintf(num, sizeof(num), "%.17g", v->double_value);
        tg_span_add_str(s, kv->key, (u_char *) num, (size_t) n);
        break;
    default:
        /* arrays, maps, bytes: not shown by the viewer */
        tg_collector_dropped(s, 1);
        break;
    }
}


static void
tg_collector_resource_service(tg_collector_ctx_t *x,
    Opentelemetry__Proto__Resource__V1__Resource *res)
{
    size_t  i;

    x->service = "unknown_service";
    if (res == NULL) {
        return;
    }
    for (i = 0; i < res->n_attributes; i++) {
        if (res->attributes[i]->key
            && strcmp(res->attributes[i]->key, "service.name") == 0
            && res->attributes[i]->value
            && res->attributes[i]->value->value_case
               == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
        {
            x->service = res->attributes[i]->value->string_value;
        }
    }
}


/* protobuf-c's allocator: an arena; what it frees goes with the arena */
static void *
tg_collector_pb_alloc(void *pool, size_t size)
{
    return tg_pool_alloc(pool, size, sizeof(void *));
}


static void
tg_collector_pb_free(void *pool, void *p)
{
}


static int
tg_collector_decode_pb(tg_collector_ctx_t *x, const u_char *body, size_t len,
    char *err, size_t errlen)
{
    int                      rc;
    size_t                   i, k, m, a;
    tg_span_t                s;
    tg_pool_t               *pool;
    ProtobufCAllocator       pa;
    tg_collector_req_pb_t   *msg;
    tg_collector_span_pb_t  *p;
    Opentelemetry__Proto__Trace__V1__ResourceSpans  *rs;
    Opentelemetry__Proto__Trace__V1__ScopeSpans     *ss;

    /* protobuf-c allocates the whole tree at once: count what it would */
    rc = tg_collector_pb_scan(&x->lim, body, len, 0, err, errlen);
    if (rc != TG_OK) {
        return rc;
    }

    /*
     * The tree goes into an arena, freed at once: protobuf-c makes an
     * allocation per message, string and array, and malloc() and free()
     * of those took a third of the time of a request.
     */
    pool = tg_pool_create(TG_COLLECTOR_PB_BLOCK);
    if (pool == NULL) {
        snprintf(err, errlen, "out of memory");
        return TG_ERROR;
    }
    pa.alloc = tg_collector_pb_alloc;
    pa.free = tg_collector_pb_free;
    pa.allocator_data = pool;
    msg = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
              &pa, len, body);
    if (msg == NULL) {
        tg_pool_destroy(pool);
        snprintf(err, errlen, "the body is not an ExportTraceServiceRequest");
        return TG_ERROR;
    }
    for (i = 0; i < msg->n_resource_spans; i++) {
        rs = msg->resource_spans[i];
        tg_collector_resource_service(x, rs->resource);
        for (k = 0; k < rs->n_scope_spans; k++) {
            ss = rs->scope_spans[k];
            for (m = 0; m < ss->n_spans; m++) {
                p = ss->spans[m];
                tg_span_init(&s);
                if (p->trace_id.len == 16) {
                    memcpy(s.trace_id, p->trace_id.data, 16);
                }
                if (p->span_id.len == 8) {
                    memcpy(s.span_id, p->span_id.data, 8);
                }
                if (p->parent_span_id.len == 8) {
                    memcpy(s.parent_id, p->parent_span_id.data, 8);
                } else if (p->parent_span_id.len != 0) {
                    memset(s.span_id, 0, 8); /* rejected below */
                }
                if (p->name) {
                    tg_span_set_name(&s, (u_char *) p->name, strlen(p->name));
                }
                s.kind = (uint8_t) (p->kind <= 5 ? p->kind : 0);
                s.start_ns = p->start_time_unix_nano;
                s.end_ns = p->end_time_unix_nano;
                s.flags = 0x01;
                if (p->status) {
                    s.status = (uint8_t) (p->status->code <= 2
                                          ? p->status->code : 0);
                    if (p->status->message && p->status->message[0]) {
                        tg_span_str_lit(&s, "otel.status_description",
                                        (u_char *) p->status->message,
                                        strlen(p->status->message));
                    }
                }
                for (a = 0; a < p->n_attributes; a++) {
                    tg_collector_add_pb_attr(&s, p->attributes[a]);
                }
                tg_collector_dropped(&s, p->dropped_attributes_count);
                tg_collector_span(x, &s);
            }
        }
    }
    tg_pool_destroy(pool);
    return TG_OK;
}


/* OTLP/JSON ids are hex strings (not base64, unlike plain protobuf JSON). */
static int
tg_collector_json_id(tg_json_t *v, u_char *out, size_t n)
{
    size_t  i;
    u_char  lc[32];

    if (v == NULL || (v->type == TG_JSON_STRING && v->str.len == 0)) {
        return TG_DECLINED;
    }
    if (v->type != TG_JSON_STRING || v->str.len != 2 * n) {
        return TG_ERROR;
    }
    for (i = 0; i < 2 * n; i++) {
        lc[i] = tg_tolower(v->str.data[i]);
    }
    return tg_hex_decode_lc(out, lc, n);
}


static void
tg_collector_add_json_attr(tg_span_t *s, tg_json_t *kv)
{
    int64_t     num;
    tg_json_t  *key, *val, *v;

    key = tg_json_get(kv, "key", NULL);
    val = tg_json_get(kv, "value", NULL);
    if (key == NULL || key->type != TG_JSON_STRING || val == NULL) {
        return;
    }
    if ((v = tg_json_get(val, "stringValue", "string_value"))
        && v->type == TG_JSON_STRING)
    {
        tg_span_add_str(s, (char *) key->str.data, v->str.data, v->str.len);
    } else if ((v = tg_json_get(val, "boolValue", "bool_value"))
               && v->type == TG_JSON_BOOL)
    {
        tg_span_add_bool(s, (char *) key->str.data, v->boolean);
    } else if ((v = tg_json_get(val, "intValue", "int_value"))
               && tg_json_int(v, &num) == TG_OK)
    {
        tg_span_add_int(s, (char *) key->str.data, num);
    } else if ((v = tg_json_get(val, "doubleValue", "double_value"))
               && (v->type == TG_JSON_NUMBER || v->type == TG_JSON_STRING))
    {
        tg_span_add_str(s, (char *) key->str.data, v->str.data, v->str.len);
    } else {
        tg_collector_dropped(s, 1);
    }
}


static int
tg_collector_json_kind(tg_json_t *v)
{
    int64_t        n;
    size_t         i;
    static const char  *names[] = {
        "SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
        "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"
    };

    if (v == NULL) {
        return 0;
    }
    if (v->type == TG_JSON_NUMBER && tg_json_int(v, &n) == TG_OK) {
        return (n >= 0 && n <= 5) ? (int) n : 0;
    }
    for (i = 0; v->type == TG_JSON_STRING && i < tg_nelts(names); i++) {
        if (tg_str_caseeq_c(&v->str, names[i])) {
            return (int) i;
        }
    }
    return 0;
}


static int
tg_collector_json_span(tg_collector_ctx_t *x, tg_json_t *js, char *err,
    size_t errlen)
{
    int64_t     code;
    uint64_t    t;
    tg_span_t   s;
    tg_json_t  *v, *st, *a;

    if (js->type != TG_JSON_OBJECT) {
        snprintf(err, errlen, "a span is not an object");
        return TG_ERROR;
    }
    tg_span_init(&s);
    s.flags = 0x01;
    if (tg_collector_json_id(tg_json_get(js, "traceId", "trace_id"),
                             s.trace_id, 16) != TG_OK
        || tg_collector_json_id(tg_json_get(js, "spanId", "span_id"),
                                s.span_id, 8) != TG_OK
        || tg_collector_json_id(tg_json_get(js, "parentSpanId",
                                            "parent_span_id"),
                                s.parent_id, 8) == TG_ERROR)
    {
        memset(s.trace_id, 0, 16); /* rejected, not a bad request */
    }
    v = tg_json_get(js, "name", NULL);
    if (v && v->type == TG_JSON_STRING) {
        tg_span_set_name(&s, v->str.data, v->str.len);
    }
    s.kind = (uint8_t) tg_collector_json_kind(tg_json_get(js, "kind", NULL));
    if (tg_json_uint(tg_json_get(js, "startTimeUnixNano",
                                 "start_time_unix_nano"), &t) == TG_OK)
    {
        s.start_ns = t;
    }
    if (tg_json_uint(tg_json_get(js, "endTimeUnixNano", "end_time_unix_nano"),
                     &t) == TG_OK)
    {
        s.end_ns = t;
    }
    st = tg_json_get(js, "status", NULL);
    v = tg_json_get(st, "code", NULL);
    if (v && v->type == TG_JSON_NUMBER && tg_json_int(v, &code) == TG_OK
        && code >= 0 && code <= 2)
    {
        s.status = (uint8_t) code;
    } else if (v && v->type == TG_JSON_STRING) {
        s.status = tg_str_caseeq_c(&v->str, "STATUS_CODE_ERROR")
                   ? TG_SPAN_STATUS_ERROR
                   : tg_str_caseeq_c(&v->str, "STATUS_CODE_OK")
                     ? TG_SPAN_STATUS_OK : TG_SPAN_STATUS_UNSET;
    }
    v = tg_json_get(st, "message", NULL);
    if (v && v->type == TG_JSON_STRING && v->str.len) {
        tg_span_str_lit(&s, "otel.status_description", v->str.data,
                        v->str.len);
    }
    v = tg_json_get(js, "attributes", NULL);
    if (v && v->type == TG_JSON_ARRAY) {
        for (a = v->child; a; a = a->next) {
            tg_collector_add_json_attr(&s, a);
        }
    }
    if (tg_json_uint(tg_json_get(js, "droppedAttributesCount",
                                 "dropped_attributes_count"), &t) == TG_OK)
    {
        tg_collector_dropped(&s, t);
    }
    tg_collector_span(x, &s);
    return TG_OK;
}


static int
tg_collector_decode_json(tg_collector_ctx_t *x, const u_char *body,
    size_t len, char *err, size_t errlen)
{
    int         rc;
    tg_pool_t  *pool;
    tg_json_t  *root, *rsa, *rs, *ssa, *ss, *spans, *sp, *attrs, *a, *v;

    pool = tg_pool_create(16384);
    if (pool == NULL) {
        snprintf(err, errlen, "out of memory");
        return TG_ERROR;
    }
    rc = TG_ERROR;
    root = tg_json_parse(pool, body, len, &x->lim, err, errlen);
    if (root == NULL) {
        if (x->lim.over >= 0) {
            rc = TG_DECLINED;
        }
        goto done;
    }
    if (root->type != TG_JSON_OBJECT) {
        snprintf(err, errlen, "the body is not a JSON object");
        goto done;
    }
    rsa = tg_json_get(root, "resourceSpans", "resource_spans");
    if (rsa != NULL && rsa->type != TG_JSON_ARRAY) {
        snprintf(err, errlen, "resourceSpans is not an array");
        goto done;
    }
    for (rs = rsa ? rsa->child : NULL; rs; rs = rs->next) {
        x->service = "unknown_service";
        attrs = tg_json_get(tg_json_get(rs, "resource", NULL), "attributes",
                            NULL);
        for (a = attrs ? attrs->child : NULL; a; a = a->next) {
            v = tg_json_get(a, "key", NULL);
            if (v && v->type == TG_JSON_STRING
                && tg_str_caseeq_c(&v->str, "service.name"))
            {
                v = tg_json_get(tg_json_get(a, "value", NULL), "stringValue",
                                "string_value");
                if (v && v->type == TG_JSON_STRING) {
                    x->service = (char *) v->str.data;
                }
            }
        }
        ssa = tg_json_get(rs, "scopeSpans", "scope_spans");
        if (ssa == NULL) {
            ssa = tg_json_get(rs, "instrumentationLibrarySpans", NULL);
        }
        for (ss = (ssa && ssa->type == TG_JSON_ARRAY) ? ssa->child : NULL; ss;
             ss = ss->next)
        {
            spans = tg_json_get(ss, "spans", NULL);
            if (spans != NULL && spans->type != TG_JSON_ARRAY) {
                snprintf(err, errlen, "spans is not an array");
                goto done;
            }
            for (sp = spans ? spans->child : NULL; sp; sp = sp->next) {
                if (tg_collector_json_span(x, sp, err, errlen) != TG_OK) {
                    goto done;
                }
            }
        }
    }
    rc = TG_OK;

done:
    tg_collector_flush(x);
    tg_pool_destroy(pool);
    return rc;
}


/*
 * 200: ExportTraceServiceResponse, with partial_success when spans were
 * rejected. Errors: google.rpc.Status { code = 3 (INVALID_ARGUMENT) or 13,
 * message } in the request's encoding (OTLP/HTTP "Failures").
 */
static void
tg_collector_reply(struct evhttp_request *req, int status, int json,
    tg_collector_ctx_t *x, const char *msg)
{
    int               code;
    u_char            hdr[32], lenbuf[10];
    size_t            n, mlen, inner;
    const char       *reason;
    struct evbuffer  *b;
    struct evkeyvalq *out;

    b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, 503, NULL);
        return;
    }
    out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Content-Type",
                      json ? "application/json" : "application/x-protobuf");
    if (status == 200) {
        reason = "OK";
        if (x->rejected == 0) {
            if (json) {
                evbuffer_add(b, "{}", 2);
            }
        } else if (json) {
            evbuffer_add_printf(b,
                                "{\"partialSuccess\":{\"rejectedSpans\":"
                                "\"%zu\",\"errorMessage\":\"%s\"}}",
                                x->rejected, x->reason);
        } else {
            /* partial_success (1) { rejected_spans (1), error_message (2) } */
            mlen = strlen(x->reason);
            n = 0;
            hdr[n++] = 0x08;
            n = (size_t) (tg_varint_put(hdr + n, x->rejected) - hdr);
            hdr[n++] = 0x12;
            n = (size_t) (tg_varint_put(hdr + n, mlen) - hdr);
            inner = n + mlen;
            evbuffer_add(b, "\x0a", 1);
            evbuffer_add(b, lenbuf, (size_t) (tg_varint_put(lenbuf, inner) - lenbuf));
            evbuffer_add(b, hdr, n);
            evbuffer_add(b, x->reason, mlen);
        }
    } else {
        reason = status == 400 ? "Bad Request"
                 : status == 401 ? "Unauthorized"
                 : status == 403 ? "Forbidden"
                 : status == 404 ? "Not Found"
                 : status == 405 ? "Method Not Allowed"
                 : status == 413 ? "Payload Too Large"
                 : status == 415 ? "Unsupported Media Type"
                 : "Service Unavailable";
        /* google.rpc.Code: UNAUTHENTICATED, PERMISSION_DENIED, UNAVAILABLE,
           else INVALID_ARGUMENT (a request that is never accepted as is) */
        code = status == 401 ? 16 : status == 403 ? 7 : status == 503 ? 13
                                                                   : 3;
        mlen = strlen(msg);
        if (json) {
            evbuffer_add_printf(b, "{\"code\":%d,\"message\":\"", code);
            /* our messages hold no quotes or backslashes */
            evbuffer_add(b, msg, mlen);
            evbuffer_add(b, "\"}", 2);
        } else {
            hdr[0] = 0x08;
            hdr[1] = (u_char) code;
            hdr[2] = 0x12;
            n = (size_t) (tg_varint_put(hdr + 3, mlen) - hdr);
            evbuffer_add(b, hdr, n);
            evbuffer_add(b, msg, mlen);
        }
    }
    evhttp_send_reply(req, status, reason, b);
    evbuffer_free(b);
}
