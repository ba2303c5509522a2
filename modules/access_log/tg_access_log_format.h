#ifndef _TG_ACCESS_LOG_FORMAT_H_INCLUDED_
#define _TG_ACCESS_LOG_FORMAT_H_INCLUDED_

/*
 * Access log formats, compiled once at configuration time into a list of
 * ops (a variable and the literal text after it) and rendered per request
 * straight into the caller's buffer: no allocation, no parsing, no system
 * call, and no bound check on the way for a value whose worst case fits.
 *
 * Variables (nginx's names where nginx has one; "-" when absent):
 *   $remote_addr $remote_port $remote_user (always "-") $time_local
 *   $time_iso8601 $msec $request $request_method $request_uri $uri
 *   $document_uri $args $query_string $server_protocol $scheme $status
 *   $body_bytes_sent $bytes_sent $request_time $http_NAME (any request
 *   header, lowercase, '_' for '-') $upstream_addr $upstream_status
 *   $upstream_response_time $upstream_header_time $host $server_addr
 *   $server_port $connection $connection_requests $pid
 * and tracegate's own:
 *   $trace_id $span_id (our SERVER span) $parent_id $sampled (0|1)
 *   $trace_flags (2 hex) $traceparent (00-trace-span-flags of our SERVER
 *   span) $x_trace_id $route (the matched prefix) $time_rfc3339 (UTC, ms)
 *   $protocol_version (1.1) $request_body_length $request_time_ms
 *   $upstream_response_time_ms $upstream_attempts
 * Upstream values describe the last attempt. There is no $request_length.
 *
 * Built-in formats:
 *   combined  nginx's: $remote_addr - $remote_user [$time_local]
 *             "$request" $status $body_bytes_sent "$http_referer"
 *             "$http_user_agent"
 *   trace     combined + " trace_id= span_id= parent_id= sampled=
 *             x_trace_id= upstream= upstream_status= rt= urt="
 *   json      one object per line: timestamp trace_id span_id parent_id
 *             trace_flags sampled x_trace_id http.request.method url.path
 *             url.query http.route http.response.status_code
 *             client.address client.port server.address server.port
 *             network.protocol.version user_agent.original
 *             http.request.header.referer http.request.body.size
 *             http.response.body.size bytes_sent duration_ms upstream
 *             upstream_status upstream_duration_ms upstream_attempts
 *             connection (absent values are null, numbers are bare)
 *
 * Values that come from the client (request line, headers, Host, the
 * X-Trace-ID) are escaped, so a line can never be split or forged:
 * "default" escaping is nginx's (\xHH for '"', '\', bytes below 0x20 and
 * from 0x7f), "json" escaping gives valid JSON string contents
 * (tg_json_escape: \n \r \t \b \f, \u00XX for the other controls and
 * DEL, and each byte that is not part of well-formed UTF-8 becomes
 * U+FFFD). Authorization, Proxy-Authorization, Cookie and Set-Cookie
 * values are never written: $http_authorization logs "[redacted]" when
 * the header is present.
 */

#include <tg_http.h>

#define TG_ACCESS_LOG_ESC_DEFAULT 0
#define TG_ACCESS_LOG_ESC_JSON    1

/*
 * One variable and the literal text that follows it (a format that starts
 * with text has a first op without a variable). Adjacent literal text, and
 * variables that are always absent, are merged into one tail at compile
 * time.
 */
typedef struct {
    uint16_t  code;   /* variable (private codes), 0: none, only the tail */
    uint8_t   json;   /* render as a JSON value: quoted string, number, null */
    uint8_t   secret; /* $http_ of a header that is never logged */
    tg_str_t  text;   /* the lowercase header name of $http_NAME */
    tg_str_t  absent; /* written for an absent value: "-", "null" or "" */
    tg_str_t  tail;   /* literal bytes written after the value */
} tg_access_log_op_t;

typedef struct {
    tg_str_t             name;
    tg_str_t             source; /* as written, for -T */
    int                  escape; /* TG_ACCESS_LOG_ESC_* */
    unsigned             builtin:1;
    tg_access_log_op_t  *ops;
    size_t               nops;
} tg_access_log_fmt_t;

/* The formatted wall clock of one second (per process). */
typedef struct {
    time_t  sec;          /* -1: empty */
    u_char  local[26];    /* 21/Nov/2026:15:56:00 +0100 ($time_local) */
    u_char  iso8601[25];  /* 2026-11-21T15:56:00+01:00 ($time_iso8601) */
    u_char  utc[19];      /* 2026-11-21T14:56:00 (UTC, for RFC 3339) */
} tg_access_log_clock_t;

/* What a line needs besides the request: the moment it is written. */
typedef struct {
    uint64_t                now_ns; /* Unix ns, the clock of r's times */
    tg_access_log_clock_t  *clock;  /* already updated to now_ns's second */
    int                     pid;
} tg_access_log_ctx_t;

/*
 * Compiles text ("$remote_addr [$time_local] \"$request\" ...") into fmt
 * with ops from pool (they live as long as the pool; text must too).
 * Variables are $name or ${name}, from the list above. Returns TG_OK, or
 * TG_ERROR with a one-line reason in err (errlen bytes), e.g. unknown
 * variable "$foo".
 */
int tg_access_log_compile(tg_pool_t *pool, tg_access_log_fmt_t *fmt,
    const tg_str_t *text, int escape, char *err, size_t errlen);

/*
 * Fills fmt with the built-in format called name: "combined", "trace" or
 * "json". Returns TG_OK, TG_DECLINED when name is not built in, TG_ERROR
 * when out of memory.
 */
int tg_access_log_builtin(tg_pool_t *pool, const tg_str_t *name,
    tg_access_log_fmt_t *fmt);

/* Whether name is one of the built-in format names. */
int tg_access_log_is_builtin(const tg_str_t *name);

/* Formats sec into clk unless clk already holds that second. */
void tg_access_log_clock_update(tg_access_log_clock_t *clk, time_t sec);

/*
 * Renders one line (without the final LF) for r into [p, last). Returns
 * the end of what was written; when the line did not fit it is cut and
 * *truncated is set (the caller may flush and render again). Reads r and
 * ctx only; does not allocate.
 */
u_char *tg_access_log_render(const tg_access_log_fmt_t *fmt,
    tg_http_request_t *r, const tg_access_log_ctx_t *ctx, u_char *p,
    u_char *last, unsigned *truncated);

/*
 * Escapes n bytes of src into [p, last) for mode (TG_ACCESS_LOG_ESC_*);
 * stops before a sequence that would not fit and sets *truncated. Returns
 * the end of the output.
 */
u_char *tg_access_log_escape(u_char *p, u_char *last, const u_char *src,
    size_t n, int mode, unsigned *truncated);

#endif /* _TG_ACCESS_LOG_FORMAT_H_INCLUDED_ */
