#include <tg_config.h>
#include <tg_core.h>
#include <tg_http.h>
#include <tg_access_log_format.h>


/* variables; 0 is none: an op that is only literal text */
enum {
    TG_AL_NONE = 0,
    TG_AL_REMOTE_ADDR,
    TG_AL_REMOTE_PORT,
    TG_AL_REMOTE_USER,
    TG_AL_TIME_LOCAL,
    TG_AL_TIME_ISO8601,
    TG_AL_TIME_RFC3339,
    TG_AL_MSEC,
    TG_AL_REQUEST,
    TG_AL_REQUEST_METHOD,
    TG_AL_REQUEST_URI,
    TG_AL_URI,
    TG_AL_ARGS,
    TG_AL_SERVER_PROTOCOL,
    TG_AL_PROTOCOL_VERSION,
    TG_AL_SCHEME,
    TG_AL_STATUS,
    TG_AL_BODY_BYTES_SENT,
    TG_AL_BYTES_SENT,
    TG_AL_REQUEST_BODY_LENGTH,
    TG_AL_REQUEST_TIME,
    TG_AL_REQUEST_TIME_MS,
    TG_AL_HTTP,
    TG_AL_UPSTREAM_ADDR,
    TG_AL_UPSTREAM_STATUS,
    TG_AL_UPSTREAM_RESPONSE_TIME,
    TG_AL_UPSTREAM_RESPONSE_TIME_MS,
    TG_AL_UPSTREAM_HEADER_TIME,
    TG_AL_UPSTREAM_ATTEMPTS,
    TG_AL_HOST,
    TG_AL_SERVER_ADDR,
    TG_AL_SERVER_PORT,
    TG_AL_CONNECTION,
    TG_AL_CONNECTION_REQUESTS,
    TG_AL_PID,
    TG_AL_TRACE_ID,
    TG_AL_SPAN_ID,
    TG_AL_PARENT_ID,
    TG_AL_SAMPLED,
    TG_AL_TRACE_FLAGS,
    TG_AL_X_TRACE_ID,
    TG_AL_ROUTE,
    TG_AL_TRACEPARENT,
    TG_AL_NVARS
};

/*
 * What a variable yields, which decides how it is written: the put helper
 * its writer calls, and what tg_access_log_emit_cut() cuts.
 */
enum {
    TG_AL_ABSENT = 0, /* "-" (json: null) */
    TG_AL_SAFE,       /* our own ASCII text: copied */
    TG_AL_UNSAFE,     /* client bytes: escaped */
    TG_AL_TOKEN,      /* client bytes logged unquoted: space escaped too */
    TG_AL_NUMBER      /* digits (json: a bare number) */
};

#define TG_AL_SCRATCH 64 /* longest computed value: a traceparent, 55 */

/* how the json escaping spells ASCII (tg_json_escape) */
#define TG_AL_JSON    (TG_JSON_SHORT_NRT | TG_JSON_SHORT_BF | TG_JSON_UPPER_HEX)

#define TG_AL_ONES    0x0101010101010101ULL
#define TG_AL_HIGH    0x8080808080808080ULL

typedef struct {
    const char  *name;
    uint16_t     code;
} tg_access_log_var_t;

/* the line being rendered, for the writers */
typedef struct {
    tg_http_request_t          *r;
    const tg_access_log_ctx_t  *ctx;
    const tg_access_log_fmt_t  *fmt;
    u_char                     *last;
    unsigned                    truncated;
} tg_access_log_line_t;

/* A variable's writer (see tg_access_log_writers). */
typedef u_char *(*tg_access_log_write_pt)(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);

typedef struct {
    u_char    *p;
    u_char    *last;
    unsigned   truncated:1;
} tg_access_log_out_t;

typedef struct {
    const char  *key;
    const char  *var;
} tg_access_log_json_field_t;

/* a format being compiled: literal text goes to one block, in order */
typedef struct {
    tg_access_log_fmt_t  *fmt;
    u_char               *lit;  /* the next free byte of the block */
} tg_access_log_build_t;

static const tg_access_log_var_t *tg_access_log_find_var(const u_char *name,
    size_t len);
static tg_access_log_op_t *tg_access_log_add_op(tg_access_log_build_t *b,
    uint16_t code, uint8_t json);
static void tg_access_log_add_text(tg_access_log_build_t *b, const u_char *s,
    size_t n);
/* out of line, so that a writer's usual path needs no stack frame */
static u_char *tg_access_log_cut(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p, int kind, const u_char *s,
    size_t n) __attribute__((cold, noinline));
static u_char *tg_access_log_write_none(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_remote_addr(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_remote_port(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_absent(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_time_local(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_time_iso8601(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_time_rfc3339(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_msec(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_request(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_request_method(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_request_uri(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_uri(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_args(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_server_protocol(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_protocol_version(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_scheme(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_status(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_body_bytes_sent(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_bytes_sent(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_request_body_length(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_request_time(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_request_time_ms(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_http(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_upstream_addr(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_upstream_status(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_upstream_response_time(
    tg_access_log_line_t *l, const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_upstream_response_time_ms(
    tg_access_log_line_t *l, const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_upstream_header_time(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_upstream_attempts(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_host(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_server_addr(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_server_port(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_connection(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_connection_requests(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_pid(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_trace_id(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_span_id(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_parent_id(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_sampled(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_trace_flags(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_x_trace_id(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_route(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static u_char *tg_access_log_write_traceparent(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p);
static inline u_char *tg_access_log_escape_fast(u_char *p, u_char *last,
    const u_char *src, size_t n, int mode, int space);
static void tg_access_log_emit_cut(tg_access_log_out_t *o,
    const tg_access_log_fmt_t *fmt, const tg_access_log_op_t *op, int kind,
    const tg_str_t *v);
static void tg_access_log_emit_request_cut(tg_access_log_out_t *o,
    const tg_access_log_fmt_t *fmt, const tg_access_log_op_t *op,
    tg_http_request_t *r);
static void tg_access_log_put(tg_access_log_out_t *o, const u_char *s,
    size_t n);
static u_char *tg_access_log_escape_default(u_char *p, u_char *last,
    const u_char *src, size_t n, int space, unsigned *truncated);
static u_char *tg_access_log_sec_ms(u_char *p, uint64_t ms);

/* Whole milliseconds from start to end (Unix ns); 0 when the clock stepped
   back in between. */
#define tg_access_log_ms(start, end)                                           \
    ((end) > (start) ? ((end) - (start)) / 1000000 : 0)
static int tg_access_log_secret_name(const tg_str_t *name);
static int tg_access_log_header_op(tg_pool_t *pool, tg_access_log_op_t *op,
    const u_char *name, size_t len);


static const tg_access_log_var_t  tg_access_log_vars[] = {
    { "remote_addr", TG_AL_REMOTE_ADDR },
    { "remote_port", TG_AL_REMOTE_PORT },
    { "remote_user", TG_AL_REMOTE_USER },
    { "time_local", TG_AL_TIME_LOCAL },
    { "time_iso8601", TG_AL_TIME_ISO8601 },
    { "time_rfc3339", TG_AL_TIME_RFC3339 },
    { "msec", TG_AL_MSEC },
    { "request", TG_AL_REQUEST },
    { "request_method", TG_AL_REQUEST_METHOD },
    { "request_uri", TG_AL_REQUEST_URI },
    { "uri", TG_AL_URI },
    { "document_uri", TG_AL_URI },
    { "args", TG_AL_ARGS },
    { "query_string", TG_AL_ARGS },
    { "server_protocol", TG_AL_SERVER_PROTOCOL },
    { "protocol_version", TG_AL_PROTOCOL_VERSION },
    { "scheme", TG_AL_SCHEME },
    { "status", TG_AL_STATUS },
    { "body_bytes_sent", TG_AL_BODY_BYTES_SENT },
    { "bytes_sent", TG_AL_BYTES_SENT },
    { "request_body_length", TG_AL_REQUEST_BODY_LENGTH },
    { "request_time", TG_AL_REQUEST_TIME },
    { "request_time_ms", TG_AL_REQUEST_TIME_MS },
    { "upstream_addr", TG_AL_UPSTREAM_ADDR },
    { "upstream_status", TG_AL_UPSTREAM_STATUS },
    { "upstream_response_time", TG_AL_UPSTREAM_RESPONSE_TIME },
    { "upstream_response_time_ms", TG_AL_UPSTREAM_RESPONSE_TIME_MS },
    { "upstream_header_time", TG_AL_UPSTREAM_HEADER_TIME },
    { "upstream_attempts", TG_AL_UPSTREAM_ATTEMPTS },
    { "host", TG_AL_HOST },
    { "server_addr", TG_AL_SERVER_ADDR },
    { "server_port", TG_AL_SERVER_PORT },
    { "connection", TG_AL_CONNECTION },
    { "connection_requests", TG_AL_CONNECTION_REQUESTS },
    { "pid", TG_AL_PID },
    { "trace_id", TG_AL_TRACE_ID },
    { "span_id", TG_AL_SPAN_ID },
    { "parent_id", TG_AL_PARENT_ID },
    { "sampled", TG_AL_SAMPLED },
    { "trace_flags", TG_AL_TRACE_FLAGS },
    { "x_trace_id", TG_AL_X_TRACE_ID },
    { "route", TG_AL_ROUTE },
    { "traceparent", TG_AL_TRACEPARENT },
    { NULL, 0 }
};


#define TG_AL_COMBINED                                                         \
    "$remote_addr - $remote_user [$time_local] \"$request\" $status "          \
    "$body_bytes_sent \"$http_referer\" \"$http_user_agent\""

static const char  tg_access_log_combined[] = TG_AL_COMBINED;

static const char  tg_access_log_trace[] =
    TG_AL_COMBINED " trace_id=$trace_id span_id=$span_id parent_id=$parent_id"
    " sampled=$sampled x_trace_id=$x_trace_id upstream=$upstream_addr"
    " upstream_status=$upstream_status rt=$request_time"
    " urt=$upstream_response_time";

/*
 * The json format: keys as OpenTelemetry names them (log record trace
 * fields, HTTP semantic conventions) where a name exists.
 */
static const tg_access_log_json_field_t  tg_access_log_json[] = {
    { "timestamp", "time_rfc3339" },
    { "trace_id", "trace_id" },
    { "span_id", "span_id" },
    { "parent_id", "parent_id" },
    { "trace_flags", "trace_flags" },
    { "sampled", "sampled" },
    { "x_trace_id", "x_trace_id" },
    { "http.request.method", "request_method" },
    { "url.path", "uri" },
    { "url.query", "args" },
    { "http.route", "route" },
    { "http.response.status_code", "status" },
    { "client.address", "remote_addr" },
    { "client.port", "remote_port" },
    { "server.address", "host" },
    { "server.port", "server_port" },
    { "network.protocol.version", "protocol_version" },
    { "user_agent.original", "http_user_agent" },
    { "http.request.header.referer", "http_referer" },
    { "http.request.body.size", "request_body_length" },
    { "http.response.body.size", "body_bytes_sent" },
    { "bytes_sent", "bytes_sent" },
    { "duration_ms", "request_time_ms" },
    { "upstream", "upstream_addr" },
    { "upstream_status", "upstream_status" },
    { "upstream_duration_ms", "upstream_response_time_ms" },
    { "upstream_attempts", "upstream_attempts" },
    { "connection", "connection" },
    { NULL, NULL }
};

static const char  *tg_access_log_months[] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

static const u_char  tg_access_log_hex[] = "0123456789ABCDEF";

/*
 * Byte classes for escaping: 1 must be escaped (controls, '"', backslash, DEL
 * and above: nginx's log escape set, which JSON strings need too), 2 is the
 * space, escaped only in unquoted fields.
 */
static const u_char  tg_access_log_esc[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};


static const tg_access_log_var_t *
tg_access_log_find_var(const u_char *name, size_t len)
{
    const tg_access_log_var_t  *v;

    for (v = tg_access_log_vars; v->name; v++) {
        if (strlen(v->name) == len && memcmp(v->name, name, len) == 0) {
            return v;
        }
    }
    return NULL;
}


static int
tg_access_log_secret_name(const tg_str_t *name)
{
    return tg_str_caseeq_c(name, "authorization")
           || tg_str_caseeq_c(name, "proxy-authorization")
           || tg_str_caseeq_c(name, "cookie")
           || tg_str_caseeq_c(name, "set-cookie");
}


/* $http_NAME: header name-with-dashes, lowercase; secrets flagged */
static int
tg_access_log_header_op(tg_pool_t *pool, tg_access_log_op_t *op,
    const u_char *name, size_t len)
{
    size_t   k;
    u_char  *h;

    h = tg_pnalloc(pool, len);
    if (h == NULL) {
        return TG_ERROR;
    }
    for (k = 0; k < len; k++) {
        h[k] = name[k] == '_' ? '-' : tg_tolower(name[k]);
    }
    op->code = TG_AL_HTTP;
    op->text.data = h;
    op->text.len = len;
    op->secret = (uint8_t) tg_access_log_secret_name(&op->text);
    return TG_OK;
}


/* A new op for a variable (or none), with an empty tail. */
static tg_access_log_op_t *
tg_access_log_add_op(tg_access_log_build_t *b, uint16_t code, uint8_t json)
{
    tg_access_log_op_t  *op;

    op = &b->fmt->ops[b->fmt->nops++];
    op->code = code;
    op->json = json;
    if (json) {
        tg_str_set(&op->absent, "null");
    } else if (b->fmt->escape == TG_ACCESS_LOG_ESC_DEFAULT) {
        tg_str_set(&op->absent, "-");
    } else {
        tg_str_set(&op->absent, "");
    }
    op->tail.data = b->lit;
    op->tail.len = 0;
    return op;
}


/* Appends literal text to the tail of the last op. */
static void
tg_access_log_add_text(tg_access_log_build_t *b, const u_char *s, size_t n)
{
    tg_access_log_op_t  *op;

    if (n == 0) {
        return;
    }
    if (b->fmt->nops == 0) {
        op = tg_access_log_add_op(b, TG_AL_NONE, 0);
    } else {
        op = &b->fmt->ops[b->fmt->nops - 1];
    }
    b->lit = (u_char *) mempcpy(b->lit, s, n);
    op->tail.len += n;
}


/*
 * Adds variable code; one that is always absent ($remote_user) becomes
 * literal text. Returns the op, or NULL when there is none.
 */
static tg_access_log_op_t *
tg_access_log_add_var(tg_access_log_build_t *b, uint16_t code, uint8_t json)
{
    tg_access_log_op_t  *op;

    op = tg_access_log_add_op(b, code, json);
    if (code != TG_AL_REMOTE_USER) {
        return op;
    }
    b->fmt->nops--;
    tg_access_log_add_text(b, op->absent.data, op->absent.len);
    return NULL;
}


int
tg_access_log_compile(tg_pool_t *pool, tg_access_log_fmt_t *fmt,
    const tg_str_t *text, int escape, char *err, size_t errlen)
{
    size_t                      i, n, start, nlen;
    u_char                     *s, *name;
    tg_access_log_op_t         *op;
    tg_access_log_build_t       b;
    const tg_access_log_var_t  *var;

    s = text->data;
    n = text->len;
    fmt->escape = escape;
    fmt->source = *text;
    fmt->nops = 0;

    /* at most one op per '$' plus one for leading text */
    fmt->ops = tg_pcalloc(pool, (n + 1) * sizeof(tg_access_log_op_t));
    /* literal text, with "-" for each "$remote_user", is never longer */
    b.fmt = fmt;
    b.lit = tg_pnalloc(pool, n + 1);
    if (fmt->ops == NULL || b.lit == NULL) {
        snprintf(err, errlen, "out of memory");
        return TG_ERROR;
    }

    i = 0;
    while (i < n) {
        start = i;
        while (i < n && s[i] != '$') {
            i++;
        }
        tg_access_log_add_text(&b, s + start, i - start);
        if (i == n) {
            break;
        }

        /* $name or ${name} */
        i++;
        if (i < n && s[i] == '{') {
            name = s + ++i;
            while (i < n && s[i] != '}') {
                i++;
            }
            if (i == n) {
                snprintf(err, errlen, "missing \"}\" after \"${%.*s\"",
                         (int) (s + i - name), (char *) name);
                return TG_ERROR;
            }
            nlen = (size_t) (s + i - name);
            i++;
        } else {
            name = s + i;
            while (i < n && (isalnum(s[i]) || s[i] == '_')) {
                i++;
            }
            nlen = (size_t) (s + i - name);
        }
        if (nlen == 0) {
            snprintf(err, errlen, "\"$\" without a variable name at offset "
                     "%zu", (size_t) (name - s));
            return TG_ERROR;
        }

        if (nlen > 5 && memcmp(name, "http_", 5) == 0) {
            op = tg_access_log_add_var(&b, TG_AL_HTTP, 0);
            if (tg_access_log_header_op(pool, op, name + 5, nlen - 5)
                != TG_OK)
            {
                snprintf(err, errlen, "out of memory");
                return TG_ERROR;
            }
        } else {
            var = tg_access_log_find_var(name, nlen);
            if (var == NULL) {
                snprintf(err, errlen, "unknown variable \"$%.*s\"",
                         (int) nlen, (char *) name);
                return TG_ERROR;
            }
            tg_access_log_add_var(&b, var->code, 0);
        }
    }
    return TG_OK;
}


int
tg_access_log_is_builtin(const tg_str_t *name)
{
    return tg_str_caseeq_c(name, "combined") || tg_str_caseeq_c(name, "trace")
           || tg_str_caseeq_c(name, "json");
}


int
tg_access_log_builtin(tg_pool_t *pool, const tg_str_t *name,
    tg_access_log_fmt_t *fmt)
{
    size_t                             i, n, len, klen;
    u_char                            *p;
    tg_str_t                           src;
    tg_access_log_op_t                *op;
    tg_access_log_build_t              b;
    const tg_access_log_var_t         *var;
    const tg_access_log_json_field_t  *f;
    char                               err[128];
    u_char                             key[64];

    fmt->builtin = 1;
    if (tg_str_caseeq_c(name, "combined") || tg_str_caseeq_c(name, "trace")) {
        if (tg_str_caseeq_c(name, "combined")) {
            src.data = (u_char *) tg_access_log_combined;
            src.len = sizeof(tg_access_log_combined) - 1;
            tg_str_set(&fmt->name, "combined");
        } else {
            src.data = (u_char *) tg_access_log_trace;
            src.len = sizeof(tg_access_log_trace) - 1;
            tg_str_set(&fmt->name, "trace");
        }
        return tg_access_log_compile(pool, fmt, &src,
                                     TG_ACCESS_LOG_ESC_DEFAULT, err,
                                     sizeof(err));
    }
    if (!tg_str_caseeq_c(name, "json")) {
        return TG_DECLINED;
    }

    /* {"key":VALUE,"key":VALUE,...}: a literal and a value op per field */
    tg_str_set(&fmt->name, "json");
    fmt->escape = TG_ACCESS_LOG_ESC_JSON;
    len = 2;
    for (n = 0; tg_access_log_json[n].key; n++) {
        len += strlen(tg_access_log_json[n].key)
               + strlen(tg_access_log_json[n].var) + 5;
    }

    /* the source, for -T: {"key":$var,...} */
    p = tg_pnalloc(pool, len);
    if (p == NULL) {
        return TG_ERROR;
    }
    fmt->source.data = p;
    for (i = 0; i < n; i++) {
        f = &tg_access_log_json[i];
        *p++ = i == 0 ? '{' : ',';
        *p++ = '"';
        p = (u_char *) mempcpy(p, f->key, strlen(f->key));
        *p++ = '"';
        *p++ = ':';
        *p++ = '$';
        p = (u_char *) mempcpy(p, f->var, strlen(f->var));
    }
    *p++ = '}';
    fmt->source.len = (size_t) (p - fmt->source.data);
    fmt->ops = tg_pcalloc(pool, (n + 1) * sizeof(tg_access_log_op_t));
    /* the literal text is shorter than the source */
    b.fmt = fmt;
    b.lit = tg_pnalloc(pool, len);
    if (fmt->ops == NULL || b.lit == NULL) {
        return TG_ERROR;
    }
    fmt->nops = 0;
    for (i = 0; i < n; i++) {
        f = &tg_access_log_json[i];
        klen = strlen(f->key);
        if (klen + 4 > sizeof(key)) {
            return TG_ERROR;
        }
        key[0] = i == 0 ? '{' : ',';
        key[1] = '"';
        memcpy(key + 2, f->key, klen);
        key[klen + 2] = '"';
        key[klen + 3] = ':';
        tg_access_log_add_text(&b, key, klen + 4);

        if (strncmp(f->var, "http_", 5) == 0) {
            op = tg_access_log_add_var(&b, TG_AL_HTTP, 1);
            if (tg_access_log_header_op(pool, op, (u_char *) f->var + 5,
                                        strlen(f->var + 5))
                != TG_OK)
            {
                return TG_ERROR;
            }
            continue;
        }
        var = tg_access_log_find_var((const u_char *) f->var, strlen(f->var));
        if (var == NULL) {
            return TG_ERROR;
        }
        tg_access_log_add_var(&b, var->code, 1);
    }
    tg_access_log_add_text(&b, (u_char *) "}", 1);
    return TG_OK;
}


void
tg_access_log_clock_update(tg_access_log_clock_t *clk, time_t sec)
{
    char       sign;
    long       off;
    struct tm  tm;

    if (clk->sec == sec) {
        return;
    }
    localtime_r(&sec, &tm);
    off = tm.tm_gmtoff / 60;
    sign = off < 0 ? '-' : '+';
    off = off < 0 ? -off : off;

    /* snprintf needs room for the NUL: format into a wider buffer */
    {
        char  b[64];

        snprintf(b, sizeof(b), "%02d/%s/%04d:%02d:%02d:%02d %c%02ld%02ld",
                 tm.tm_mday, tg_access_log_months[tm.tm_mon],
                 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
                 off / 60, off % 60);
        memcpy(clk->local, b, sizeof(clk->local));
        snprintf(b, sizeof(b), "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, sign, off / 60, off % 60);
        memcpy(clk->iso8601, b, sizeof(clk->iso8601));
        gmtime_r(&sec, &tm);
        snprintf(b, sizeof(b), "%04d-%02d-%02dT%02d:%02d:%02d",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
        memcpy(clk->utc, b, sizeof(clk->utc));
    }
    clk->sec = sec;
}


/* v (below 1000) as three digits */
static inline u_char *
tg_access_log_3digits(u_char *p, uint32_t v)
{
    p[0] = (u_char) ('0' + v / 100);
    p[1] = (u_char) ('0' + v / 10 % 10);
    p[2] = (u_char) ('0' + v % 10);
    return p + 3;
}


/* "S.mmm" as nginx writes times */
static u_char *
tg_access_log_sec_ms(u_char *p, uint64_t ms)
{
    p = tg_utoa(p, ms / 1000);
    *p++ = '.';
    return tg_access_log_3digits(p, (uint32_t) (ms % 1000));
}


/* Whether an 8- or 16-byte id is all zero. */
static inline int
tg_access_log_zero(const u_char *p, size_t n)
{
    uint64_t  a, b;

    memcpy(&a, p, 8);
    b = 0;
    if (n == 16) {
        memcpy(&b, p + 8, 8);
    }
    return (a | b) == 0;
}


/*
 * strlen() of the text in a char array of size bytes, a word at a time;
 * nothing past the array is read.
 */
static inline size_t
tg_access_log_cstrlen(const char *s, size_t size)
{
    size_t    i;
    uint64_t  w;

    for (i = 0; i + 8 <= size; i += 8) {
        memcpy(&w, s + i, 8);
        if ((w - TG_AL_ONES) & ~w & TG_AL_HIGH) {
            break;
        }
    }
    while (i < size && s[i] != '\0') {
        i++;
    }
    return i;
}


/*
 * Copies exactly n bytes. The values and literals of a line are short:
 * up to 32 bytes take two moves (that overlap) instead of a call.
 */
static inline u_char *
tg_access_log_copy(u_char *p, const u_char *s, size_t n)
{
    u_char    x[16], y[16];
    uint32_t  a, b;
    uint64_t  c, d;

    if (n > 16) {
        if (n > 32) {
            return (u_char *) mempcpy(p, s, n);
        }
        memcpy(x, s, 16);
        memcpy(y, s + n - 16, 16);
        memcpy(p, x, 16);
        memcpy(p + n - 16, y, 16);
        return p + n;
    }
    if (n >= 8) {
        memcpy(&c, s, 8);
        memcpy(&d, s + n - 8, 8);
        memcpy(p, &c, 8);
        memcpy(p + n - 8, &d, 8);
        return p + n;
    }
    if (n >= 4) {
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(p, &a, 4);
        memcpy(p + n - 4, &b, 4);
        return p + n;
    }
    if (n) {
        p[0] = s[0];
        p[n / 2] = s[n / 2];
        p[n - 1] = s[n - 1];
    }
    return p + n;
}


/*
 * Eight bytes at a time: the high bit of a byte of the result is set when
 * that byte needs escaping (tg_access_log_esc): below "below" (controls,
 * and the space in a token), '"', '\\', DEL and above. A byte that has
 * its own high bit set is flagged by w itself, and borrows or carries
 * only leave a byte that is flagged, so the result is 0 exactly when no
 * byte needs escaping.
 */
static inline uint64_t
tg_access_log_dirty(uint64_t w, uint64_t below)
{
    uint64_t  q, b;

    q = w ^ (TG_AL_ONES * '"');
    b = w ^ (TG_AL_ONES * '\\');
    return ((w - below) | (q - TG_AL_ONES) | (b - TG_AL_ONES) | w
            | (w + TG_AL_ONES))
           & TG_AL_HIGH;
}


/*
 * Copies n client bytes that need no escaping (a space too when space is
 * set) and returns the end; returns NULL, with junk written in the n
 * bytes at p, when some byte needs escaping. Eight bytes are checked and
 * moved at a time (the last word overlaps), a shorter string is checked
 * as one word of its bytes (overlapping, or padded with a letter); nothing
 * outside the n bytes is read or written.
 */
static inline u_char *
tg_access_log_copy_clean(u_char *p, const u_char *s, size_t n, int space)
{
    size_t    i;
    uint32_t  a, b;
    uint64_t  w, below, dirty;

    below = TG_AL_ONES * (space ? 0x21 : 0x20);
    if (n >= 8) {
        dirty = 0;
        for (i = 0; i + 8 < n; i += 8) {
            memcpy(&w, s + i, 8);
            dirty |= tg_access_log_dirty(w, below);
            memcpy(p + i, &w, 8);
        }
        memcpy(&w, s + n - 8, 8);
        dirty |= tg_access_log_dirty(w, below);
        memcpy(p + n - 8, &w, 8);
        return dirty ? NULL : p + n;
    }
    if (n >= 4) {
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        w = (uint64_t) a << 32 | b;
    } else if (n) {
        w = (TG_AL_ONES * 'a') << 24 | (uint64_t) s[0] << 16
            | (uint64_t) s[n / 2] << 8 | s[n - 1];
    } else {
        return p;
    }
    if (tg_access_log_dirty(w, below)) {
        return NULL;
    }
    return tg_access_log_copy(p, s, n);
}


static void
tg_access_log_put(tg_access_log_out_t *o, const u_char *s, size_t n)
{
    if ((size_t) (o->last - o->p) < n) {
        n = (size_t) (o->last - o->p);
        o->truncated = 1;
    }
    memcpy(o->p, s, n);
    o->p += n;
}


static u_char *
tg_access_log_escape_default(u_char *p, u_char *last, const u_char *src,
    size_t n, int space, unsigned *truncated)
{
    size_t  i, j;
    u_char  c, mask;

    mask = space ? 3 : 1;
    for (i = 0; i < n; i = j + 1) {
        /* a run of bytes that stay as they are, copied at once */
        for (j = i; j < n && !(tg_access_log_esc[src[j]] & mask); j++) {
            /* scan */
        }
        if ((size_t) (last - p) < j - i) {
            *truncated = 1;
            break;
        }
        p = (u_char *) mempcpy(p, src + i, j - i);
        if (j == n) {
            break;
        }
        if (last - p < 4) {
            *truncated = 1;
            break;
        }
        c = src[j];
        *p++ = '\\';
        *p++ = 'x';
        *p++ = tg_access_log_hex[c >> 4];
        *p++ = tg_access_log_hex[c & 0xf];
    }
    return p;
}


u_char *
tg_access_log_escape(u_char *p, u_char *last, const u_char *src, size_t n,
    int mode, unsigned *truncated)
{
    if (mode == TG_ACCESS_LOG_ESC_JSON) {
        return tg_json_escape(p, last, src, n, TG_AL_JSON, truncated);
    }
    return tg_access_log_escape_default(p, last, src, n, 0, truncated);
}


/*
 * Writes a value that may not fit, as far as it does: what is cut (and
 * where) is the renderer's contract for lines longer than the room.
 */
static void
tg_access_log_emit_cut(tg_access_log_out_t *o,
    const tg_access_log_fmt_t *fmt, const tg_access_log_op_t *op, int kind,
    const tg_str_t *v)
{
    unsigned  t;

    t = 0;
    if (kind == TG_AL_ABSENT) {
        if (op->json) {
            tg_access_log_put(o, (u_char *) "null", 4);
        } else if (fmt->escape == TG_ACCESS_LOG_ESC_DEFAULT) {
            tg_access_log_put(o, (u_char *) "-", 1);
        }
        return;
    }
    if (op->json && kind == TG_AL_NUMBER) {
        tg_access_log_put(o, v->data, v->len);
        return;
    }
    if (op->json) {
        tg_access_log_put(o, (u_char *) "\"", 1);
    }
    if (kind == TG_AL_SAFE || kind == TG_AL_NUMBER) {
        tg_access_log_put(o, v->data, v->len);
    } else if (fmt->escape == TG_ACCESS_LOG_ESC_JSON) {
        o->p = tg_json_escape(o->p, o->last, v->data, v->len, TG_AL_JSON,
                              &t);
    } else {
        o->p = tg_access_log_escape_default(o->p, o->last, v->data, v->len,
                                            kind == TG_AL_TOKEN, &t);
    }
    if (op->json) {
        tg_access_log_put(o, (u_char *) "\"", 1);
    }
    if (t) {
        o->truncated = 1;
    }
}


/* $request: "METHOD URI HTTP/x.y", each client part escaped */
static void
tg_access_log_emit_request_cut(tg_access_log_out_t *o,
    const tg_access_log_fmt_t *fmt, const tg_access_log_op_t *op,
    tg_http_request_t *r)
{
    unsigned  t;
    u_char    proto[9];

    if (r->method.len == 0) {
        tg_access_log_emit_cut(o, fmt, op, TG_AL_ABSENT, NULL);
        return;
    }
    t = 0;
    if (op->json) {
        tg_access_log_put(o, (u_char *) "\"", 1);
    }
    o->p = tg_access_log_escape(o->p, o->last, r->method.data, r->method.len,
                                fmt->escape, &t);
    tg_access_log_put(o, (u_char *) " ", 1);
    o->p = tg_access_log_escape(o->p, o->last, r->uri.data, r->uri.len,
                                fmt->escape, &t);
    memcpy(proto, " HTTP/", 6);
    proto[6] = (u_char) ('0' + r->http_major);
    proto[7] = '.';
    proto[8] = (u_char) ('0' + r->http_minor);
    tg_access_log_put(o, proto, sizeof(proto));
    if (op->json) {
        tg_access_log_put(o, (u_char *) "\"", 1);
    }
    if (t) {
        o->truncated = 1;
    }
}


/*
 * Escapes client bytes when there is room for the worst case: a clean
 * string (the usual) is copied at once, others go through the escaper.
 */
static inline u_char *
tg_access_log_escape_fast(u_char *p, u_char *last, const u_char *src,
    size_t n, int mode, int space)
{
    u_char    *e;
    unsigned   t;

    /* JSON strings keep the space */
    space = space && mode == TG_ACCESS_LOG_ESC_DEFAULT;
    e = tg_access_log_copy_clean(p, src, n, space);
    if (e != NULL) {
        return e;
    }
    t = 0;
    if (mode == TG_ACCESS_LOG_ESC_JSON) {
        return tg_json_escape(p, last, src, n, TG_AL_JSON, &t);
    }
    return tg_access_log_escape_default(p, last, src, n, space, &t);
}


/*
 * The value helpers of the writers below. Each writes one value at p in
 * the way its kind (TG_AL_*) is written, and returns the end. When even
 * the worst case (every client byte escaped, quotes) fits before l->last
 * nothing is checked on the way; otherwise tg_access_log_cut() writes
 * what fits and sets l->truncated.
 */

static u_char *
tg_access_log_cut(tg_access_log_line_t *l, const tg_access_log_op_t *op,
    u_char *p, int kind, const u_char *s, size_t n)
{
    tg_str_t             v;
    tg_access_log_out_t  o;

    v.data = (u_char *) s;
    v.len = n;
    o.p = p;
    o.last = l->last;
    o.truncated = 0;
    tg_access_log_emit_cut(&o, l->fmt, op, kind, &v);
    l->truncated = o.truncated;
    return o.p;
}


/* "-", JSON's null, or nothing (a string format escaped for JSON) */
static inline u_char *
tg_access_log_put_absent(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    if ((size_t) (l->last - p) >= op->absent.len) {
        return tg_access_log_copy(p, op->absent.data, op->absent.len);
    }
    return tg_access_log_cut(l, op, p, TG_AL_ABSENT, NULL, 0);
}


/* Our own ASCII text: copied, quoted in JSON. */
static inline u_char *
tg_access_log_put_safe(tg_access_log_line_t *l, const tg_access_log_op_t *op,
    u_char *p, const u_char *s, size_t n)
{
    if ((size_t) (l->last - p) < n + 2) {
        return tg_access_log_cut(l, op, p, TG_AL_SAFE, s, n);
    }
    if (!op->json) {
        return tg_access_log_copy(p, s, n);
    }
    *p++ = '"';
    p = tg_access_log_copy(p, s, n);
    *p++ = '"';
    return p;
}


/* Digits: copied, bare in JSON. */
static inline u_char *
tg_access_log_put_digits(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p, const u_char *s, size_t n)
{
    if ((size_t) (l->last - p) < n + 2) {
        return tg_access_log_cut(l, op, p, TG_AL_NUMBER, s, n);
    }
    return tg_access_log_copy(p, s, n);
}


static inline u_char *
tg_access_log_put_uint(tg_access_log_line_t *l, const tg_access_log_op_t *op,
    u_char *p, uint64_t n)
{
    u_char  *e;
    u_char   digits[TG_AL_SCRATCH];

    if ((size_t) (l->last - p) >= TG_AL_SCRATCH) {
        return tg_utoa(p, n);
    }
    e = tg_utoa(digits, n);
    return tg_access_log_put_digits(l, op, p, digits, (size_t) (e - digits));
}


/*
 * Where a writer formats a computed ASCII value: straight into the line
 * when the longest (TG_AL_SCRATCH) fits and it needs no quotes, else into
 * scratch, to be written by tg_access_log_put_computed().
 */
static inline u_char *
tg_access_log_dst(tg_access_log_line_t *l, const tg_access_log_op_t *op,
    u_char *p, u_char *scratch)
{
    return !op->json && (size_t) (l->last - p) >= TG_AL_SCRATCH ? p : scratch;
}


/* The n bytes formatted at d (from tg_access_log_dst()), as text. */
static inline u_char *
tg_access_log_put_computed(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p, u_char *d, size_t n)
{
    if (d == p) {
        return p + n;
    }
    return tg_access_log_put_safe(l, op, p, d, n);
}


/* Client bytes: escaped, quoted in JSON; a token escapes the space too. */
static inline u_char *
tg_access_log_put_unsafe(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p, const u_char *s, size_t n,
    int kind)
{
    size_t  room, worst;

    room = (size_t) (l->last - p);
    /* "\xHH" or "\u00XX" for a byte */
    worst = l->fmt->escape == TG_ACCESS_LOG_ESC_JSON ? TG_JSON_ESCAPE_MAX : 4;
    if (room < 2 || n > (room - 2) / worst) {
        return tg_access_log_cut(l, op, p, kind, s, n);
    }
    if (op->json) {
        *p++ = '"';
    }
    p = tg_access_log_escape_fast(p, l->last, s, n, l->fmt->escape,
                                  kind == TG_AL_TOKEN);
    if (op->json) {
        *p++ = '"';
    }
    return p;
}


/* Bytes the client sent, absent when empty. */
static inline u_char *
tg_access_log_put_client(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p, const tg_str_t *s)
{
    if (s->len == 0) {
        return tg_access_log_put_absent(l, op, p);
    }
    return tg_access_log_put_unsafe(l, op, p, s->data, s->len, TG_AL_UNSAFE);
}


/* The text of an address in a char array (c->peer_text, c->local_text). */
static inline u_char *
tg_access_log_put_addr(tg_access_log_line_t *l, const tg_access_log_op_t *op,
    u_char *p, const char *text, size_t size)
{
    if (text[0] == '\0') {
        return tg_access_log_put_absent(l, op, p);
    }
    return tg_access_log_put_safe(l, op, p, (const u_char *) text,
                                  tg_access_log_cstrlen(text, size));
}


/* "S.mmm" as nginx writes times */
static inline u_char *
tg_access_log_put_seconds(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p, uint64_t ms)
{
    u_char  *d;
    u_char   scratch[TG_AL_SCRATCH];

    d = tg_access_log_dst(l, op, p, scratch);
    return tg_access_log_put_computed(l, op, p, d,
                                      (size_t) (tg_access_log_sec_ms(d, ms)
                                                - d));
}


/* An 8- or 16-byte id as lowercase hex, absent when zero. */
static inline u_char *
tg_access_log_put_id(tg_access_log_line_t *l, const tg_access_log_op_t *op,
    u_char *p, const u_char *id, size_t n)
{
    u_char  *d;
    u_char   scratch[TG_AL_SCRATCH];

    if (tg_access_log_zero(id, n)) {
        return tg_access_log_put_absent(l, op, p);
    }
    d = tg_access_log_dst(l, op, p, scratch);
    tg_hex_encode(d, id, n);
    return tg_access_log_put_computed(l, op, p, d, 2 * n);
}


/* The last attempt's time until its end (or now, when not recorded). */
static inline uint64_t
tg_access_log_upstream_ms(tg_http_request_t *r,
    const tg_access_log_ctx_t *ctx)
{
    return tg_access_log_ms(r->upstream.start_ns,
                            r->upstream.end_ns ? r->upstream.end_ns
                                               : ctx->now_ns);
}


/*
 * The writers, one per variable (tg_access_log_writers): each computes
 * its value from l->r and l->ctx and writes it at p with a helper above,
 * as the format escapes it. Returns the end; sets l->truncated when the
 * value did not fit.
 */

/* an op that is only literal text */
static u_char *
tg_access_log_write_none(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    return p;
}


static u_char *
tg_access_log_write_remote_addr(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    tg_http_conn_t  *c = l->r->c;

    if (c == NULL) {
        return tg_access_log_put_absent(l, op, p);
    }
    return tg_access_log_put_addr(l, op, p, c->peer_text,
                                  sizeof(c->peer_text));
}


static u_char *
tg_access_log_write_remote_port(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    if (l->r->c == NULL) {
        return tg_access_log_put_absent(l, op, p);
    }
    return tg_access_log_put_uint(l, op, p, (uint64_t) l->r->c->peer_port);
}


/* tracegate authenticates nobody, and never logs credentials */
static u_char *
tg_access_log_write_absent(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    return tg_access_log_put_absent(l, op, p);
}


static u_char *
tg_access_log_write_time_local(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    return tg_access_log_put_safe(l, op, p, l->ctx->clock->local,
                                  sizeof(l->ctx->clock->local));
}


static u_char *
tg_access_log_write_time_iso8601(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    return tg_access_log_put_safe(l, op, p, l->ctx->clock->iso8601,
                                  sizeof(l->ctx->clock->iso8601));
}


/* UTC with milliseconds: 2026-11-21T14:56:00.123Z */
static u_char *
tg_access_log_write_time_rfc3339(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    u_char                       *d, *e;
    const tg_access_log_clock_t  *clk = l->ctx->clock;
    u_char                        scratch[TG_AL_SCRATCH];

    d = tg_access_log_dst(l, op, p, scratch);
    e = (u_char *) mempcpy(d, clk->utc, sizeof(clk->utc));
    *e++ = '.';
    e = tg_access_log_3digits(e, (uint32_t) (l->ctx->now_ns / 1000000
                                             % 1000));
    *e++ = 'Z';
    return tg_access_log_put_computed(l, op, p, d, (size_t) (e - d));
}


static u_char *
tg_access_log_write_msec(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    return tg_access_log_put_seconds(l, op, p, l->ctx->now_ns / 1000000);
}


/* $request: "METHOD URI HTTP/x.y", each client part escaped */
static u_char *
tg_access_log_write_request(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    size_t                      room, worst;
    tg_http_request_t          *r = l->r;
    tg_access_log_out_t         o;
    const tg_access_log_fmt_t  *fmt = l->fmt;

    room = (size_t) (l->last - p);
    worst = fmt->escape == TG_ACCESS_LOG_ESC_JSON ? TG_JSON_ESCAPE_MAX : 4;

    /* quotes, the space and " HTTP/x.y": 12 */
    if (r->method.len && room >= 12
        && r->method.len + r->uri.len <= (room - 12) / worst)
    {
        if (op->json) {
            *p++ = '"';
        }
        p = tg_access_log_escape_fast(p, l->last, r->method.data,
                                      r->method.len, fmt->escape, 0);
        *p++ = ' ';
        p = tg_access_log_escape_fast(p, l->last, r->uri.data, r->uri.len,
                                      fmt->escape, 0);
        memcpy(p, " HTTP/", 6);
        p[6] = (u_char) ('0' + r->http_major);
        p[7] = '.';
        p[8] = (u_char) ('0' + r->http_minor);
        p += 9;
        if (op->json) {
            *p++ = '"';
        }
        return p;
    }

    o.p = p;
    o.last = l->last;
    o.truncated = 0;
    tg_access_log_emit_request_cut(&o, fmt, op, r);
    l->truncated = o.truncated;
    return o.p;
}


static u_char *
tg_access_log_write_request_method(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    return tg_access_log_put_client(l, op, p, &l->r->method);
}


static u_char *
tg_access_log_write_request_uri(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    return tg_access_log_put_client(l, op, p, &l->r->uri);
}


static u_char *
tg_access_log_write_uri(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    return tg_access_log_put_client(l, op, p, &l->r->path);
}


static u_char *
tg_access_log_write_args(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    return tg_access_log_put_client(l, op, p, &l->r->query);
}


static u_char *
tg_access_log_write_server_protocol(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    u_char  *d;
    u_char   scratch[TG_AL_SCRATCH];

    if (l->r->method.len == 0) {
        return tg_access_log_put_absent(l, op, p);
    }
    d = tg_access_log_dst(l, op, p, scratch);
    memcpy(d, "HTTP/", 5);
    d[5] = (u_char) ('0' + l->r->http_major);
    d[6] = '.';
    d[7] = (u_char) ('0' + l->r->http_minor);
    return tg_access_log_put_computed(l, op, p, d, 8);
}


static u_char *
tg_access_log_write_protocol_version(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    u_char  *d;
    u_char   scratch[TG_AL_SCRATCH];

    if (l->r->method.len == 0) {
        return tg_access_log_put_absent(l, op, p);
    }
    d = tg_access_log_dst(l, op, p, scratch);
    d[0] = (u_char) ('0' + l->r->http_major);
    d[1] = '.';
    d[2] = (u_char) ('0' + l->r->http_minor);
    return tg_access_log_put_computed(l, op, p, d, 3);
}


static u_char *
tg_access_log_write_scheme(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    tg_http_conn_t  *c = l->r->c;

    if (c != NULL && c->listen != NULL && c->listen->ssl) {
        return tg_access_log_put_safe(l, op, p, (u_char *) "https", 5);
    }
    return tg_access_log_put_safe(l, op, p, (u_char *) "http", 4);
}


static u_char *
tg_access_log_write_status(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    if (l->r->status > 0) {
        return tg_access_log_put_uint(l, op, p, (uint64_t) l->r->status);
    }
    if (op->json) {
        return tg_access_log_put_absent(l, op, p);
    }
    /* nginx: no status was sent */
    return tg_access_log_put_safe(l, op, p, (u_char *) "000", 3);
}


/* body_bytes_sent when the writers count it, else the relayed upstream
   body (tg_http.h) */
static u_char *
tg_access_log_write_body_bytes_sent(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    tg_http_request_t  *r = l->r;

    return tg_access_log_put_uint(l, op, p,
                                  r->body_bytes_sent ? r->body_bytes_sent
                                                     : r->upstream.body_bytes);
}


static u_char *
tg_access_log_write_bytes_sent(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    return tg_access_log_put_uint(l, op, p, l->r->bytes_sent);
}


static u_char *
tg_access_log_write_request_body_length(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    return tg_access_log_put_uint(l, op, p, l->r->request_body_bytes);
}


static u_char *
tg_access_log_write_request_time(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    return tg_access_log_put_seconds(l, op, p,
                                     tg_access_log_ms(l->r->start_ns,
                                                      l->ctx->now_ns));
}


static u_char *
tg_access_log_write_request_time_ms(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    return tg_access_log_put_uint(l, op, p,
                                  tg_access_log_ms(l->r->start_ns,
                                                   l->ctx->now_ns));
}


/* $http_NAME: the first header of that name; secrets are never written */
static u_char *
tg_access_log_write_http(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    size_t             i;
    tg_http_header_t  *h;

    h = l->r->headers.elts;
    for (i = 0; i < l->r->headers.nelts; i++) {
        if (h[i].name.len != op->text.len
            || !tg_str_caseeq(&h[i].name, &op->text))
        {
            continue;
        }
        if (op->secret || (h[i].flags & TG_HTTP_HDR_SECRET)) {
            return tg_access_log_put_safe(l, op, p, (u_char *) "[redacted]",
                                          10);
        }
        return tg_access_log_put_unsafe(l, op, p, h[i].value.data,
                                        h[i].value.len, TG_AL_UNSAFE);
    }
    return tg_access_log_put_absent(l, op, p);
}


static u_char *
tg_access_log_write_upstream_addr(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    tg_upstream_server_t  *us = l->r->upstream.server;

    if (us == NULL) {
        return tg_access_log_put_absent(l, op, p);
    }
    return tg_access_log_put_unsafe(l, op, p, us->text.data, us->text.len,
                                    TG_AL_UNSAFE);
}


static u_char *
tg_access_log_write_upstream_status(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    if (l->r->upstream.result <= 0) {
        return tg_access_log_put_absent(l, op, p);
    }
    return tg_access_log_put_uint(l, op, p,
                                  (uint64_t) l->r->upstream.result);
}


static u_char *
tg_access_log_write_upstream_response_time(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    tg_http_request_t  *r = l->r;

    if (r->upstream.server == NULL || r->upstream.start_ns == 0) {
        return tg_access_log_put_absent(l, op, p);
    }
    return tg_access_log_put_seconds(l, op, p,
                                     tg_access_log_upstream_ms(r, l->ctx));
}


static u_char *
tg_access_log_write_upstream_response_time_ms(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    tg_http_request_t  *r = l->r;

    if (r->upstream.server == NULL || r->upstream.start_ns == 0) {
        return tg_access_log_put_absent(l, op, p);
    }
    return tg_access_log_put_uint(l, op, p,
                                  tg_access_log_upstream_ms(r, l->ctx));
}


static u_char *
tg_access_log_write_upstream_header_time(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    tg_http_request_t  *r = l->r;

    if (r->upstream.header_ns == 0
        || r->upstream.header_ns < r->upstream.start_ns)
    {
        return tg_access_log_put_absent(l, op, p);
    }
    return tg_access_log_put_seconds(l, op, p,
                                     tg_access_log_ms(r->upstream.start_ns,
                                                      r->upstream.header_ns));
}


static u_char *
tg_access_log_write_upstream_attempts(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    return tg_access_log_put_uint(l, op, p,
                                  (uint64_t) l->r->upstream.attempts);
}


/* without the port, as nginx's $host; "[v6]:port" keeps its brackets */
static u_char *
tg_access_log_write_host(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    size_t         i, n;
    const u_char  *h;

    h = l->r->host.data;
    n = l->r->host.len;
    if (n == 0) {
        return tg_access_log_put_absent(l, op, p);
    }
    for (i = n; i > 0; i--) {
        if (h[i - 1] == ':') {
            n = i - 1;
            break;
        }
        if (h[i - 1] == ']' || !isdigit(h[i - 1])) {
            break;
        }
    }
    return tg_access_log_put_unsafe(l, op, p, h, n, TG_AL_UNSAFE);
}


static u_char *
tg_access_log_write_server_addr(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    tg_http_conn_t  *c = l->r->c;

    if (c == NULL) {
        return tg_access_log_put_absent(l, op, p);
    }
    return tg_access_log_put_addr(l, op, p, c->local_text,
                                  sizeof(c->local_text));
}


static u_char *
tg_access_log_write_server_port(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    if (l->r->c == NULL) {
        return tg_access_log_put_absent(l, op, p);
    }
    return tg_access_log_put_uint(l, op, p, (uint64_t) l->r->c->local_port);
}


static u_char *
tg_access_log_write_connection(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    if (l->r->c == NULL) {
        return tg_access_log_put_absent(l, op, p);
    }
    return tg_access_log_put_uint(l, op, p, l->r->c->number);
}


/* c->requests counts finished requests; nginx counts this one */
static u_char *
tg_access_log_write_connection_requests(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    if (l->r->c == NULL) {
        return tg_access_log_put_absent(l, op, p);
    }
    return tg_access_log_put_uint(l, op, p, l->r->c->requests + 1);
}


static u_char *
tg_access_log_write_pid(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    return tg_access_log_put_uint(l, op, p, (uint64_t) l->ctx->pid);
}


/* r->trace_hex is the id encoded once, when the error log needed it */
static u_char *
tg_access_log_write_trace_id(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    tg_http_request_t  *r = l->r;

    if (r->trace_hex[0] == '\0' || tg_access_log_zero(r->trace_id, 16)) {
        return tg_access_log_put_id(l, op, p, r->trace_id, 16);
    }
    return tg_access_log_put_safe(l, op, p, r->trace_hex, 32);
}


static u_char *
tg_access_log_write_span_id(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    return tg_access_log_put_id(l, op, p, l->r->span_id, 8);
}


static u_char *
tg_access_log_write_parent_id(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    if (!l->r->has_parent) {
        return tg_access_log_put_absent(l, op, p);
    }
    return tg_access_log_put_id(l, op, p, l->r->parent_id, 8);
}


static u_char *
tg_access_log_write_sampled(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    if (tg_access_log_zero(l->r->trace_id, 16)) {
        return tg_access_log_put_absent(l, op, p);
    }
    return tg_access_log_put_digits(l, op, p,
                                    (u_char *) (l->r->sampled ? "1" : "0"),
                                    1);
}


static u_char *
tg_access_log_write_trace_flags(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    u_char  hex[2];

    if (tg_access_log_zero(l->r->trace_id, 16)) {
        return tg_access_log_put_absent(l, op, p);
    }
    tg_hex_encode(hex, &l->r->trace_flags, 1);
    return tg_access_log_put_safe(l, op, p, hex, 2);
}


static u_char *
tg_access_log_write_x_trace_id(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    tg_str_t  *x = &l->r->x_trace_id;

    if (x->len == 0) {
        return tg_access_log_put_absent(l, op, p);
    }
    return tg_access_log_put_unsafe(l, op, p, x->data, x->len, TG_AL_TOKEN);
}


static u_char *
tg_access_log_write_route(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    tg_http_route_t  *rt = l->r->route;

    if (rt == NULL) {
        return tg_access_log_put_absent(l, op, p);
    }
    return tg_access_log_put_unsafe(l, op, p, rt->prefix.data, rt->prefix.len,
                                    TG_AL_TOKEN);
}


/* 00-trace-span-flags of our SERVER span */
static u_char *
tg_access_log_write_traceparent(tg_access_log_line_t *l,
    const tg_access_log_op_t *op, u_char *p)
{
    u_char             *d, *e;
    tg_http_request_t  *r = l->r;
    u_char              scratch[TG_AL_SCRATCH];

    if (tg_access_log_zero(r->trace_id, 16)) {
        return tg_access_log_put_absent(l, op, p);
    }
    d = tg_access_log_dst(l, op, p, scratch);
    e = (u_char *) mempcpy(d, "00-", 3);
    if (r->trace_hex[0] != '\0') {
        e = (u_char *) mempcpy(e, r->trace_hex, 32);
    } else {
        e = tg_hex_encode(e, r->trace_id, 16);
    }
    *e++ = '-';
    e = tg_hex_encode(e, r->span_id, 8);
    *e++ = '-';
    e = tg_hex_encode(e, &r->trace_flags, 1);
    return tg_access_log_put_computed(l, op, p, d, (size_t) (e - d));
}


/* The writer of each variable, indexed by its code. */
static const tg_access_log_write_pt  tg_access_log_writers[TG_AL_NVARS] = {
    [TG_AL_NONE] = tg_access_log_write_none,
    [TG_AL_REMOTE_ADDR] = tg_access_log_write_remote_addr,
    [TG_AL_REMOTE_PORT] = tg_access_log_write_remote_port,
    [TG_AL_REMOTE_USER] = tg_access_log_write_absent,
    [TG_AL_TIME_LOCAL] = tg_access_log_write_time_local,
    [TG_AL_TIME_ISO8601] = tg_access_log_write_time_iso8601,
    [TG_AL_TIME_RFC3339] = tg_access_log_write_time_rfc3339,
    [TG_AL_MSEC] = tg_access_log_write_msec,
    [TG_AL_REQUEST] = tg_access_log_write_request,
    [TG_AL_REQUEST_METHOD] = tg_access_log_write_request_method,
    [TG_AL_REQUEST_URI] = tg_access_log_write_request_uri,
    [TG_AL_URI] = tg_access_log_write_uri,
    [TG_AL_ARGS] = tg_access_log_write_args,
    [TG_AL_SERVER_PROTOCOL] = tg_access_log_write_server_protocol,
    [TG_AL_PROTOCOL_VERSION] = tg_access_log_write_protocol_version,
    [TG_AL_SCHEME] = tg_access_log_write_scheme,
    [TG_AL_STATUS] = tg_access_log_write_status,
    [TG_AL_BODY_BYTES_SENT] = tg_access_log_write_body_bytes_sent,
    [TG_AL_BYTES_SENT] = tg_access_log_write_bytes_sent,
    [TG_AL_REQUEST_BODY_LENGTH] = tg_access_log_write_request_body_length,
    [TG_AL_REQUEST_TIME] = tg_access_log_write_request_time,
    [TG_AL_REQUEST_TIME_MS] = tg_access_log_write_request_time_ms,
    [TG_AL_HTTP] = tg_access_log_write_http,
    [TG_AL_UPSTREAM_ADDR] = tg_access_log_write_upstream_addr,
    [TG_AL_UPSTREAM_STATUS] = tg_access_log_write_upstream_status,
    [TG_AL_UPSTREAM_RESPONSE_TIME] = tg_access_log_write_upstream_response_time,
    [TG_AL_UPSTREAM_RESPONSE_TIME_MS] =
        tg_access_log_write_upstream_response_time_ms,
    [TG_AL_UPSTREAM_HEADER_TIME] = tg_access_log_write_upstream_header_time,
    [TG_AL_UPSTREAM_ATTEMPTS] = tg_access_log_write_upstream_attempts,
    [TG_AL_HOST] = tg_access_log_write_host,
    [TG_AL_SERVER_ADDR] = tg_access_log_write_server_addr,
    [TG_AL_SERVER_PORT] = tg_access_log_write_server_port,
    [TG_AL_CONNECTION] = tg_access_log_write_connection,
    [TG_AL_CONNECTION_REQUESTS] = tg_access_log_write_connection_requests,
    [TG_AL_PID] = tg_access_log_write_pid,
    [TG_AL_TRACE_ID] = tg_access_log_write_trace_id,
    [TG_AL_SPAN_ID] = tg_access_log_write_span_id,
    [TG_AL_PARENT_ID] = tg_access_log_write_parent_id,
    [TG_AL_SAMPLED] = tg_access_log_write_sampled,
    [TG_AL_TRACE_FLAGS] = tg_access_log_write_trace_flags,
    [TG_AL_X_TRACE_ID] = tg_access_log_write_x_trace_id,
    [TG_AL_ROUTE] = tg_access_log_write_route,
    [TG_AL_TRACEPARENT] = tg_access_log_write_traceparent
};


u_char *
tg_access_log_render(const tg_access_log_fmt_t *fmt, tg_http_request_t *r,
    const tg_access_log_ctx_t *ctx, u_char *p, u_char *last,
    unsigned *truncated)
{
    size_t                     room;
    tg_access_log_line_t       l;
    const tg_access_log_op_t  *op, *end;

    l.r = r;
    l.ctx = ctx;
    l.fmt = fmt;
    l.last = last;
    l.truncated = 0;
    end = fmt->ops + fmt->nops;

    for (op = fmt->ops; op < end; op++) {
        p = tg_access_log_writers[op->code](&l, op, p);
        if (l.truncated) {
            break;
        }

        room = (size_t) (last - p);
        if (room < op->tail.len) {
            p = tg_access_log_copy(p, op->tail.data, room);
            l.truncated = 1;
            break;
        }
        p = tg_access_log_copy(p, op->tail.data, op->tail.len);
    }

    *truncated = l.truncated;
    return p;
}
