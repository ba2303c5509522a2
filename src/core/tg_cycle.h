#ifndef _TG_CYCLE_H_INCLUDED_
#define _TG_CYCLE_H_INCLUDED_

/*
 * A cycle is one loaded configuration: everything read from the .conf files
 * lives in cycle->pool. A reload builds a new cycle and swaps only when it
 * loaded cleanly.
 */

#include <tg_conf.h>
#include <tg_module.h>
#include <tg_trace.h>

struct tg_listen_s {
    tg_str_t                 text;   /* as written, for logs */
    struct sockaddr_storage  addr;
    socklen_t                addrlen;
    int                      backlog;
    unsigned                 ssl:1;
    tg_str_t                 ssl_name;  /* ssl=NAME, empty for [ssl] */
    const char              *conf_file;
    int                      conf_line;
    void                    *ssl_ctx;   /* SSL_CTX *, the default one */
    int                     *fds;    /* one SO_REUSEPORT socket per worker */
    size_t                   nfds;
    const char              *owner;  /* NULL: [main]; else the section of
                                        an admin page's own listener
                                        (tg_admin.h) */
    /* set by the protocol layer before the worker's loop runs: takes an
       accepted socket (and owns it from then on) */
    void                   (*handler)(int fd, struct sockaddr *sa,
                                      socklen_t len, tg_listen_t *ls);
};

typedef struct {
    tg_array_t  listens;         /* tg_listen_t */
    int64_t     workers;         /* 0 = auto */
    tg_str_t    pid;
    tg_str_t    error_log;       /* "path [level]" */
    int64_t     worker_connections;
    int64_t     client_header_timeout;  /* ms, 408 */
    int64_t     client_body_timeout;    /* ms, 408 */
    int64_t     keepalive_timeout;      /* ms; 0 disables keep-alive */
    int64_t     keepalive_requests;
    int64_t     send_timeout;           /* ms */
    int64_t     client_max_body_size;   /* bytes, 413; 0 = unlimited */
    int64_t     client_max_header_size; /* bytes, 431 */
    int64_t     client_max_headers;     /* count, 431 */
    int64_t     client_max_uri_size;    /* bytes, 414 */
    int64_t     proxy_buffer_size;      /* bytes buffered per direction */
    tg_str_t    html;                   /* directory of error pages */
    tg_str_t    health;                 /* built-in health path, "off" */
    int         server_tokens;
    int         reject_ambiguous_paths; /* 400 for paths an upstream may
                                           resolve elsewhere */
    int64_t     shutdown_timeout;       /* ms, graceful stop deadline */
    int64_t     tunnel_timeout;         /* ms without a byte: tunnel ends */
    int         daemon;
    tg_array_t *trusted_proxies;        /* tg_str_t CIDRs for X-Forwarded-For */
    tg_array_t *trusted_cidrs;          /* tg_cidr_t compiled from the above */
} tg_main_conf_t;

/* [trace]: core tracing settings (OTEL_* environment fills unset ones) */
typedef struct {
    tg_str_t     service_name;      /* OTEL_SERVICE_NAME; default "tracegate" */
    tg_array_t  *resource;          /* tg_keyval_t: resource attributes, config
                                       then OTEL_RESOURCE_ATTRIBUTES */
    tg_str_t     sampler;           /* OTEL_TRACES_SAMPLER names */
    double       sampler_arg;       /* ratio, default 1.0 */
    tg_str_t     propagators;       /* "tracecontext,b3,b3multi,jaeger" */
    tg_str_t     x_trace_id;        /* header name, empty when off */
    tg_str_t     x_trace_id_format; /* hex | uuid | time */
    int          traceresponse;     /* add traceresponse to responses */
    int64_t      tracestate_limit;  /* bytes, default 512 */
    tg_array_t  *capture_request_headers;  /* tg_str_t, lowercase */
    tg_array_t  *capture_response_headers; /* tg_str_t, lowercase */
    int64_t      attribute_count_limit;        /* default 128 */
    int64_t      attribute_value_length_limit; /* 0: no limit */
    /* compiled from the above */
    tg_trace_sampler_t      sampler_rt;
    tg_trace_propagators_t  props;
    int                     xid_format;  /* TG_TRACE_XID_* */
} tg_trace_conf_t;

typedef struct {
    int     family;
    u_char  addr[16];
    int     bits;
} tg_cidr_t;

/* Whether sa falls in one of the CIDRs (NULL list: never). */
int tg_cidr_match(tg_array_t *cidrs, struct sockaddr *sa);

/*
 * Parses "ADDR" or "ADDR/BITS" (IPv4 or IPv6) into *cidr. Returns TG_OK,
 * TG_DECLINED when text is not such an address, TG_ERROR when out of
 * memory (a NUL copy of text comes from pool).
 */
int tg_cidr_parse(tg_pool_t *pool, const tg_str_t *text, tg_cidr_t *cidr);

/*
 * An access list of an admin surface (status, viewer, collector):
 * "allow = CIDR | all", repeatable. tg_conf_set_allow is a command setter
 * whose offset points at a tg_array_t * of tg_cidr_t ("all" adds 0.0.0.0/0
 * and ::/0). tg_allow_default fills an unset list with 127.0.0.1 and ::1
 * (cycle pool). tg_allow_open says whether the list admits some address
 * outside loopback (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104): -t warns
 * about those. tg_allow_dump prints "allow = ADDR/BITS" lines for -T.
 */
char *tg_conf_set_allow(tg_conf_t *cf, tg_command_t *cmd, void *conf);
int tg_allow_default(tg_pool_t *pool, tg_array_t **allow);
int tg_allow_open(tg_array_t *allow);
void tg_allow_dump(FILE *out, tg_array_t *allow);

struct tg_cycle_s {
    tg_pool_t       *pool;
    char            *prefix;      /* ends with '/' */
    char            *conf_file;   /* full path */
    tg_main_conf_t   main;
    tg_trace_conf_t  trace;
    tg_array_t       conf_files;  /* tg_str_t: every file read, for -T */
    tg_array_t       metrics;     /* tg_metric_t (tg_metrics.h) */
    void           **module_conf;
    tg_log_file_t    error_log_file;
    int              error_log_level;
    tg_str_t         page_index;  /* html/index.html contents */
    tg_str_t         page_404;
    tg_str_t         page_50x;
    unsigned         seen_main;
    unsigned         seen_trace;
    u_char          *module_seen;  /* per module: its section was read */
    char             conf_error[TG_CONF_ERRLEN];
};

/* The cycle the process runs on. */
extern tg_cycle_t  *tg_cycle;

/*
 * Loads conf_file (relative to prefix) into a new cycle, applies defaults
 * and OTEL_* environment, validates, resolves upstreams and loads html
 * pages. Returns the cycle, or NULL with the message in err (errlen bytes).
 */
tg_cycle_t *tg_cycle_load(const char *prefix, const char *conf_file,
    char *err, size_t errlen);

/* Frees a cycle (its pool); does not touch sockets. */
void tg_cycle_free(tg_cycle_t *cycle);

/* Prints the files read and the effective settings (-T). */
void tg_cycle_dump(tg_cycle_t *cycle, FILE *out);

/* The [main] commands, for the conf reader. */
extern tg_command_t  tg_main_commands[];
extern tg_command_t  tg_trace_commands[];

/* Parses "host:port", "[v6]:port" or "port" into addr; TG_OK/TG_ERROR. */
int tg_parse_addr(tg_pool_t *pool, tg_str_t *text, int default_any,
    struct sockaddr_storage *addr, socklen_t *len);

#endif /* _TG_CYCLE_H_INCLUDED_ */
