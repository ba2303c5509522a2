#include <tg_config.h>
#include <tg_core.h>
#include <tg_cycle.h>
#include <tg_metrics.h>
#include <tg_http.h>
#include <tg_otlp_exporter.h>

#include <curl/curl.h>


/*
 * [otlp]: where finished spans go. Precedence per setting: the .conf key,
 * then the OTEL_* environment (the per-signal TRACES variable before the
 * general one), then the OpenTelemetry default. With no endpoint anywhere
 * spans go to logs/spans.jsonl (OTLP/JSON lines), the embedded default.
 */

#define TG_OTLP_DEFAULT_ENDPOINT  "http://localhost:4318/v1/traces"
#define TG_OTLP_DEFAULT_FILE      "logs/spans.jsonl"
#define TG_OTLP_MAX_IN_FLIGHT     64

enum {
    TG_OTLP_S_EXPORTER = 0,
    TG_OTLP_S_ENDPOINT,
    TG_OTLP_S_PROTOCOL,
    TG_OTLP_S_HEADERS,
    TG_OTLP_S_COMPRESSION,
    TG_OTLP_S_TIMEOUT,
    TG_OTLP_S_CERTIFICATE,
    TG_OTLP_S_FILE,
    TG_OTLP_S_QUEUE,
    TG_OTLP_S_BATCH,
    TG_OTLP_S_DELAY,
    TG_OTLP_S_EXPORT_TIMEOUT,
    TG_OTLP_S_IN_FLIGHT,
    TG_OTLP_S_N
};

typedef struct {
    /* as read from the file; unset: NULL data / TG_CONF_UNSET */
    tg_str_t                 exporter;
    tg_str_t                 endpoint;
    tg_str_t                 protocol;
    tg_array_t              *headers;        /* tg_keyval_t */
    tg_str_t                 compression;
    int64_t                  timeout;        /* ms */
    tg_str_t                 certificate;
    tg_str_t                 file;
    int64_t                  max_queue_size;
    int64_t                  max_export_batch_size;
    int64_t                  schedule_delay; /* ms */
    int64_t                  export_timeout; /* ms */
    int64_t                  max_in_flight;

    /* effective, filled by init_conf */
    tg_otlp_exporter_conf_t  ex;
    size_t                   max_queue;
    const char              *src[TG_OTLP_S_N];
} tg_otlp_conf_t;

/* one worker process's export state */
typedef struct {
    tg_otlp_ring_t          *ring;
    tg_otlp_exporter_t      *exporter;
    tg_otlp_resource_t       resource;
} tg_otlp_process_t;

static void *tg_otlp_create_conf(tg_cycle_t *cycle);
static int tg_otlp_metrics_add(tg_cycle_t *cycle);
static int tg_otlp_init_master(void);
static int tg_otlp_init_conf(tg_cycle_t *cycle, void *conf);
static int tg_otlp_init_process(tg_cycle_t *cycle);
static void tg_otlp_exit_process(tg_cycle_t *cycle);
static void tg_otlp_dump_conf(tg_cycle_t *cycle, void *conf, FILE *out);
static void tg_otlp_sink(const tg_span_batch_t *b, void *data);
static const char *tg_otlp_env(const char *name);
static const char *tg_otlp_env2(const char *traces, const char *general,
    const char **which);
static char *tg_otlp_cstr(tg_pool_t *pool, const tg_str_t *s);
static char *tg_otlp_path(tg_pool_t *pool, const char *prefix,
    const char *path);
static int tg_otlp_env_ms(tg_cycle_t *cycle, const char *traces,
    const char *general, int64_t *out, const char **src);
static int tg_otlp_conf_endpoint(tg_cycle_t *cycle, tg_otlp_conf_t *oc);
static int tg_otlp_conf_exporter(tg_cycle_t *cycle, tg_otlp_conf_t *oc);
static int tg_otlp_conf_protocol(tg_cycle_t *cycle, tg_otlp_conf_t *oc);
static int tg_otlp_conf_headers(tg_cycle_t *cycle, tg_otlp_conf_t *oc);
static int tg_otlp_conf_bsp(tg_cycle_t *cycle, tg_otlp_conf_t *oc);
static int tg_otlp_header_add(tg_cycle_t *cycle, tg_array_t *a,
    const tg_str_t *name, const tg_str_t *value, const char *src);
static int tg_otlp_env_headers(tg_cycle_t *cycle, tg_array_t *a,
    const char *env, const char *src);
static size_t tg_otlp_url_decode(u_char *dst, const u_char *src, size_t n);
static int tg_otlp_resource_init(tg_cycle_t *cycle, tg_otlp_resource_t *res);
static int tg_otlp_resource_add(tg_otlp_resource_t *res, size_t max,
    const u_char *key, size_t klen, const u_char *val, size_t vlen);
static void tg_otlp_resource_free(tg_otlp_resource_t *res);


static tg_command_t  tg_otlp_commands[] = {

    { tg_string("exporter"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_otlp_conf_t, exporter) },

    { tg_string("endpoint"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_otlp_conf_t, endpoint) },

    { tg_string("protocol"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_otlp_conf_t, protocol) },

    { tg_string("header"), TG_CONF_TAKE1 | TG_CONF_MULTI, tg_conf_add_keyval,
      offsetof(tg_otlp_conf_t, headers) },

    { tg_string("compression"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_otlp_conf_t, compression) },

    { tg_string("timeout"), TG_CONF_TAKE1, tg_conf_set_msec,
      offsetof(tg_otlp_conf_t, timeout) },

    { tg_string("certificate"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_otlp_conf_t, certificate) },

    { tg_string("file"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_otlp_conf_t, file) },

    { tg_string("max_queue_size"), TG_CONF_TAKE1, tg_conf_set_num,
      offsetof(tg_otlp_conf_t, max_queue_size) },

    { tg_string("max_export_batch_size"), TG_CONF_TAKE1, tg_conf_set_num,
      offsetof(tg_otlp_conf_t, max_export_batch_size) },

    { tg_string("schedule_delay"), TG_CONF_TAKE1, tg_conf_set_msec,
      offsetof(tg_otlp_conf_t, schedule_delay) },

    { tg_string("export_timeout"), TG_CONF_TAKE1, tg_conf_set_msec,
      offsetof(tg_otlp_conf_t, export_timeout) },

    { tg_string("max_in_flight"), TG_CONF_TAKE1, tg_conf_set_num,
      offsetof(tg_otlp_conf_t, max_in_flight) },

    tg_null_command
};




tg_module_t  tg_otlp_module = {
    .section = tg_string("otlp"),
    .init_master = tg_otlp_init_master,
    .commands = tg_otlp_commands,
    .create_conf = tg_otlp_create_conf,
    .init_conf = tg_otlp_init_conf,
    .init_process = tg_otlp_init_process,
    .exit_process = tg_otlp_exit_process,
    .dump_conf = tg_otlp_dump_conf
};


static tg_otlp_stats_t    tg_otlp_stats_local;
tg_otlp_stats_t          *tg_otlp_stats = &tg_otlp_stats_local;

static tg_otlp_process_t  tg_otlp_process;


/* libcurl, once per process before any thread (libcurl-thread.md) */
static int
tg_otlp_init_master(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "tracegate: curl_global_init() failed\n");
        return TG_ERROR;
    }
    return TG_OK;
}


/*
 * The exporter's counters in the metrics registry, in the order of the
 * status page's "exporter" object; registered whether or not this cycle
 * exports, so that they keep their places across reloads.
 */
static int
tg_otlp_metrics_add(tg_cycle_t *cycle)
{
    size_t  i;

    const tg_metric_t  metrics[] = {
        { "tracegate_exporter_spans_queued_total", NULL,
          "Spans queued for export.", "exporter.queued",
          &tg_otlp_stats_local.queued },
        { "tracegate_exporter_spans_exported_total", NULL,
          "Spans accepted by the receiver.", "exporter.exported",
          &tg_otlp_stats_local.exported },
        { "tracegate_exporter_spans_dropped_total", "reason=\"queue_full\"",
          "Spans dropped, by reason.", "exporter.dropped.queue_full",
          &tg_otlp_stats_local.dropped_full },
        { "tracegate_exporter_spans_dropped_total",
          "reason=\"export_failed\"", "Spans dropped, by reason.",
          "exporter.dropped.export_failed",
          &tg_otlp_stats_local.dropped_failed },
        { "tracegate_exporter_requests_retried_total", NULL,
          "Export requests retried.", "exporter.retried",
          &tg_otlp_stats_local.retried },
        { "tracegate_exporter_spans_rejected_total", NULL,
          "Spans the receiver rejected (partial success).",
          "exporter.rejected", &tg_otlp_stats_local.rejected },
        { "tracegate_exporter_requests_total", NULL,
          "Export requests sent, retries included.", "exporter.requests",
          &tg_otlp_stats_local.requests },
    };

    for (i = 0; i < tg_nelts(metrics); i++) {
        if (tg_metric_add(cycle, &metrics[i]) != TG_OK) {
            return TG_ERROR;
        }
    }
    return TG_OK;
}


static void *
tg_otlp_create_conf(tg_cycle_t *cycle)
{
    tg_otlp_conf_t  *oc;

    oc = tg_pcalloc(cycle->pool, sizeof(tg_otlp_conf_t));
    if (oc == NULL) {
        return NULL;
    }
    oc->timeout = TG_CONF_UNSET;
    oc->max_queue_size = TG_CONF_UNSET;
    oc->max_export_batch_size = TG_CONF_UNSET;
    oc->schedule_delay = TG_CONF_UNSET;
    oc->export_timeout = TG_CONF_UNSET;
    oc->max_in_flight = TG_CONF_UNSET;
    return oc;
}


/*
 * Resolves every setting from conf, environment and defaults into oc->ex
 * and records where each came from (oc->src, for -T). Env values that do
 * not parse are logged and ignored (the SDK environment rules); a bad
 * .conf value is an error.
 */
static int
tg_otlp_init_conf(tg_cycle_t *cycle, void *conf)
{
    const char      *v, *which;
    tg_otlp_conf_t  *oc = conf;

    if (tg_otlp_metrics_add(cycle) != TG_OK
        || tg_otlp_conf_endpoint(cycle, oc) != TG_OK
        || tg_otlp_conf_exporter(cycle, oc) != TG_OK
        || tg_otlp_conf_protocol(cycle, oc) != TG_OK
        || tg_otlp_conf_headers(cycle, oc) != TG_OK
        || tg_otlp_conf_bsp(cycle, oc) != TG_OK)
    {
        return TG_ERROR;
    }

    /* compression */
    oc->src[TG_OTLP_S_COMPRESSION] = "default";
    v = NULL;
    if (oc->compression.data) {
        v = tg_otlp_cstr(cycle->pool, &oc->compression);
        oc->src[TG_OTLP_S_COMPRESSION] = "conf";
    } else {
        v = tg_otlp_env2("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                         "OTEL_EXPORTER_OTLP_COMPRESSION", &which);
        if (v) {
            oc->src[TG_OTLP_S_COMPRESSION] = which;
        }
    }
    if (v && strcasecmp(v, "gzip") == 0) {
        oc->ex.gzip = 1;
    } else if (v && strcasecmp(v, "none") != 0) {
        if (oc->compression.data) {
            snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                     "[otlp] compression: \"%s\" is not gzip or none", v);
            return TG_ERROR;
        }
        tg_log_error(TG_LOG_WARN, &tg_log_global, 0,
                     "%s=\"%s\" is not gzip or none, ignored",
                     oc->src[TG_OTLP_S_COMPRESSION], v);
        oc->src[TG_OTLP_S_COMPRESSION] = "default";
    }

    /* timeout of one request */
    oc->ex.timeout_ms = 10000;
    oc->src[TG_OTLP_S_TIMEOUT] = "default";
    if (oc->timeout != TG_CONF_UNSET) {
        oc->ex.timeout_ms = oc->timeout;
        oc->src[TG_OTLP_S_TIMEOUT] = "conf";
    } else {
        tg_otlp_env_ms(cycle, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                       "OTEL_EXPORTER_OTLP_TIMEOUT", &oc->ex.timeout_ms,
                       &oc->src[TG_OTLP_S_TIMEOUT]);
    }
    if (oc->ex.timeout_ms <= 0) {
        snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                 "[otlp] timeout must be positive");
        return TG_ERROR;
    }

    /* CA certificate for https */
    oc->src[TG_OTLP_S_CERTIFICATE] = "default";
    if (oc->certificate.data) {
        oc->ex.certificate = tg_otlp_path(cycle->pool, cycle->prefix,
                                 tg_otlp_cstr(cycle->pool, &oc->certificate));
        oc->src[TG_OTLP_S_CERTIFICATE] = "conf";
    } else {
        v = tg_otlp_env2("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
                         "OTEL_EXPORTER_OTLP_CERTIFICATE", &which);
        if (v) {
            oc->ex.certificate = tg_otlp_path(cycle->pool, cycle->prefix, v);
            oc->src[TG_OTLP_S_CERTIFICATE] = which;
        }
    }
    if (oc->ex.certificate && access(oc->ex.certificate, R_OK) != 0) {
        snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                 "[otlp] certificate \"%s\" (%s) is not readable: %s",
                 oc->ex.certificate, oc->src[TG_OTLP_S_CERTIFICATE],
                 strerror(errno));
        return TG_ERROR;
    }

    /* the file exporter's path */
    oc->src[TG_OTLP_S_FILE] = "default";
    oc->ex.file = tg_otlp_path(cycle->pool, cycle->prefix,
                               TG_OTLP_DEFAULT_FILE);
    if (oc->file.data) {
        oc->ex.file = tg_otlp_path(cycle->pool, cycle->prefix,
                                   tg_otlp_cstr(cycle->pool, &oc->file));
        oc->src[TG_OTLP_S_FILE] = "conf";
    }
    if (oc->ex.file == NULL) {
        snprintf(cycle->conf_error, TG_CONF_ERRLEN, "[otlp] out of memory");
        return TG_ERROR;
    }
    return TG_OK;
}


/*
 * The conf endpoint and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT are used as
 * given; OTEL_EXPORTER_OTLP_ENDPOINT is a base URL that gets "v1/traces"
 * appended (specification/protocol/exporter.md).
 */
static int
tg_otlp_conf_endpoint(tg_cycle_t *cycle, tg_otlp_conf_t *oc)
{
    char        *url;
    size_t       len;
    const char  *v;

    oc->src[TG_OTLP_S_ENDPOINT] = "default";
    oc->ex.endpoint = NULL;

    if (oc->endpoint.data) {
        oc->ex.endpoint = tg_otlp_cstr(cycle->pool, &oc->endpoint);
        oc->src[TG_OTLP_S_ENDPOINT] = "conf";

    } else if ((v = tg_otlp_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))) {
        oc->ex.endpoint = v;
        oc->src[TG_OTLP_S_ENDPOINT] = "env OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";

    } else if ((v = tg_otlp_env("OTEL_EXPORTER_OTLP_ENDPOINT"))) {
        len = strlen(v);
        url = tg_pnalloc(cycle->pool, len + sizeof("/v1/traces"));
        if (url == NULL) {
            return TG_ERROR;
        }
        snprintf(url, len + sizeof("/v1/traces"), "%s%s", v,
                 (len && v[len - 1] == '/') ? "v1/traces" : "/v1/traces");
        oc->ex.endpoint = url;
        oc->src[TG_OTLP_S_ENDPOINT] =
            "env OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces";
    }

    if (oc->ex.endpoint
        && strncasecmp(oc->ex.endpoint, "http://", 7) != 0
        && strncasecmp(oc->ex.endpoint, "https://", 8) != 0)
    {
        snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                 "[otlp] endpoint \"%s\" (%s) is not an http:// or https:// "
                 "URL", oc->ex.endpoint, oc->src[TG_OTLP_S_ENDPOINT]);
        return TG_ERROR;
    }
    return TG_OK;
}


/*
 * exporter: conf, else OTEL_SDK_DISABLED=true (none), else
 * OTEL_TRACES_EXPORTER, else otlp when an endpoint is known and the
 * embedded default (file) when none is.
 */
static int
tg_otlp_conf_exporter(tg_cycle_t *cycle, tg_otlp_conf_t *oc)
{
    int          kind;
    char         name[32];
    size_t       len;
    const char  *v, *src;

    kind = -1;
    src = "default";

    if (oc->exporter.data) {
        len = tg_min(oc->exporter.len, sizeof(name) - 1);
        memcpy(name, oc->exporter.data, len);
        name[len] = '\0';
        v = name;
        src = "conf";
    } else if ((v = tg_otlp_env("OTEL_SDK_DISABLED"))
               && strcasecmp(v, "true") == 0)
    {
        v = "none";
        src = "env OTEL_SDK_DISABLED";
    } else if ((v = tg_otlp_env("OTEL_TRACES_EXPORTER"))) {
        /* a list is allowed; the first entry we know wins */
        len = strcspn(v, ",");
        len = tg_min(len, sizeof(name) - 1);
        memcpy(name, v, len);
        name[len] = '\0';
        v = name;
        src = "env OTEL_TRACES_EXPORTER";
    }

    if (v == NULL) {
        kind = TG_OTLP_EXPORT_FILE;
    } else if (strcmp(v, "otlp") == 0) {
        kind = TG_OTLP_EXPORT_OTLP;
    } else if (strcmp(v, "file") == 0 && src[0] == 'c') {
        kind = TG_OTLP_EXPORT_FILE;
    } else if (strcmp(v, "console") == 0) {
        kind = TG_OTLP_EXPORT_CONSOLE;
    } else if (strcmp(v, "none") == 0) {
        kind = TG_OTLP_EXPORT_NONE;
    } else if (src[0] == 'c') {
        snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                 "[otlp] exporter: \"%s\" is not otlp, file, console or none",
                 v);
        return TG_ERROR;
    } else {
        tg_log_error(TG_LOG_WARN, &tg_log_global, 0,
                     "OTEL_TRACES_EXPORTER=\"%s\" is not supported (otlp, "
                     "console, none), ignored", v);
        src = "default";
        kind = TG_OTLP_EXPORT_FILE;
    }

    if (src[0] == 'd' && oc->ex.endpoint) {
        kind = TG_OTLP_EXPORT_OTLP;
        src = "default (an endpoint is set)";
    } else if (src[0] == 'd') {
        src = "default (no endpoint: embedded file export)";
    }
    if (kind == TG_OTLP_EXPORT_OTLP && oc->ex.endpoint == NULL) {
        oc->ex.endpoint = TG_OTLP_DEFAULT_ENDPOINT;
    }
    oc->ex.kind = kind;
    oc->src[TG_OTLP_S_EXPORTER] = src;
    return TG_OK;
}


static int
tg_otlp_conf_protocol(tg_cycle_t *cycle, tg_otlp_conf_t *oc)
{
    const char  *v, *which;

    oc->src[TG_OTLP_S_PROTOCOL] = "default";
    if (oc->protocol.data) {
        v = tg_otlp_cstr(cycle->pool, &oc->protocol);
        if (v == NULL) {
            return TG_ERROR;
        }
        if (strcmp(v, "http/json") == 0) {
            oc->ex.json = 1;
        } else if (strcmp(v, "http/protobuf") != 0) {
            snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                     "[otlp] protocol: \"%s\" is not http/protobuf or "
                     "http/json (grpc is not supported)", v);
            return TG_ERROR;
        }
        oc->src[TG_OTLP_S_PROTOCOL] = "conf";
        return TG_OK;
    }

    v = tg_otlp_env2("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                     "OTEL_EXPORTER_OTLP_PROTOCOL", &which);
    if (v == NULL) {
        return TG_OK;
    }
    if (strcmp(v, "http/json") == 0) {
        oc->ex.json = 1;
        oc->src[TG_OTLP_S_PROTOCOL] = which;
    } else if (strcmp(v, "http/protobuf") == 0) {
        oc->src[TG_OTLP_S_PROTOCOL] = which;
    } else {
        tg_log_error(TG_LOG_WARN, &tg_log_global, 0,
                     "%s=\"%s\" is not supported (http/protobuf, http/json),"
                     " using http/protobuf", which + 4, v);
    }
    return TG_OK;
}


/*
 * Headers: the conf's header keys, else OTEL_EXPORTER_OTLP_TRACES_HEADERS,
 * else OTEL_EXPORTER_OTLP_HEADERS ("k=v,k=v", values URL-decoded). Names
 * must be tokens and values free of CR, LF and NUL (no header injection).
 */
static int
tg_otlp_conf_headers(tg_cycle_t *cycle, tg_otlp_conf_t *oc)
{
    size_t        i;
    const char   *v, *which;
    tg_array_t   *a;
    tg_keyval_t  *kv;

    a = tg_array_create(cycle->pool, 4, sizeof(char *));
    if (a == NULL) {
        return TG_ERROR;
    }
    oc->src[TG_OTLP_S_HEADERS] = "default";

    if (oc->headers && oc->headers->nelts) {
        kv = oc->headers->elts;
        for (i = 0; i < oc->headers->nelts; i++) {
            if (tg_otlp_header_add(cycle, a, &kv[i].key, &kv[i].value, NULL)
                != TG_OK)
            {
                return TG_ERROR;
            }
        }
        oc->src[TG_OTLP_S_HEADERS] = "conf";

    } else {
        v = tg_otlp_env2("OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                         "OTEL_EXPORTER_OTLP_HEADERS", &which);
        if (v) {
            if (tg_otlp_env_headers(cycle, a, v, which) != TG_OK) {
                return TG_ERROR;
            }
            oc->src[TG_OTLP_S_HEADERS] = which;
        }
    }

    oc->ex.headers = a->elts;
    oc->ex.nheaders = a->nelts;
    return TG_OK;
}


/* Appends "Name: value"; src NULL means a .conf value (errors are fatal). */
static int
tg_otlp_header_add(tg_cycle_t *cycle, tg_array_t *a, const tg_str_t *name,
    const tg_str_t *value, const char *src)
{
    char    *line, **slot;
    size_t   i;
    u_char   c;

    static const char  tchar[] = "!#$%&'*+-.^_`|~";

    for (i = 0; i < name->len; i++) {
        c = name->data[i];
        if (!isalnum(c) && strchr(tchar, c) == NULL) {
            break;
        }
    }
    if (name->len == 0 || i < name->len) {
        goto invalid;
    }
    for (i = 0; i < value->len; i++) {
        c = value->data[i];
        if (c == '\r' || c == '\n' || c == '\0') {
            goto invalid;
        }
    }

    line = tg_pnalloc(cycle->pool, name->len + value->len + 3);
    slot = tg_array_push(a);
    if (line == NULL || slot == NULL) {
        return TG_ERROR;
    }
    snprintf(line, name->len + value->len + 3, TG_STR_FMT ": " TG_STR_FMT,
             TG_STR_ARG(name), TG_STR_ARG(value));
    *slot = line;
    return TG_OK;

invalid:
    if (src == NULL) {
        snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                 "[otlp] header \"" TG_STR_FMT "\": invalid name or value",
                 TG_STR_ARG(name));
        return TG_ERROR;
    }
    tg_log_error(TG_LOG_WARN, &tg_log_global, 0,
                 "%s: header \"" TG_STR_FMT "\" has an invalid name or "
                 "value, ignored", src + 4, TG_STR_ARG(name));
    return TG_OK;
}


static int
tg_otlp_env_headers(tg_cycle_t *cycle, tg_array_t *a, const char *env,
    const char *src)
{
    u_char    *copy, *eq;
    tg_str_t   rest, item, name, value;

    copy = tg_pnalloc(cycle->pool, strlen(env) + 1);
    if (copy == NULL) {
        return TG_ERROR;
    }
    memcpy(copy, env, strlen(env) + 1);
    rest.data = copy;
    rest.len = strlen(env);

    while (tg_str_next_token(&rest, ',', &item)) {
        if (item.len == 0) {
            continue;
        }
        eq = memchr(item.data, '=', item.len);
        if (eq == NULL) {
            tg_log_error(TG_LOG_WARN, &tg_log_global, 0,
                         "%s: \"" TG_STR_FMT "\" is not key=value, ignored",
                         src + 4, TG_STR_ARG(&item));
            continue;
        }
        name.data = item.data;
        name.len = (size_t) (eq - item.data);
        value.data = eq + 1;
        value.len = item.len - name.len - 1;
        tg_str_trim_ows(&name);
        tg_str_trim_ows(&value);
        /* decoding only shrinks, so it can be done in place */
        value.len = tg_otlp_url_decode(value.data, value.data, value.len);
        if (tg_otlp_header_add(cycle, a, &name, &value, src) != TG_OK) {
            return TG_ERROR;
        }
    }
    return TG_OK;
}


#define tg_otlp_hexval(c)                                                     \
    (u_char) (isdigit(c) ? (c) - '0' : ((c) | 0x20) - 'a' + 10)

/* Percent-decoding (RFC 3986 section 2.1); a bad escape stays as is. */
static size_t
tg_otlp_url_decode(u_char *dst, const u_char *src, size_t n)
{
    size_t  i, o;
    u_char  h;

    o = 0;
    for (i = 0; i < n; i++) {
        if (src[i] == '%' && i + 2 < n && isxdigit(src[i + 1])
            && isxdigit(src[i + 2]))
        {
            h = (u_char) (tg_otlp_hexval(src[i + 1]) << 4
                          | tg_otlp_hexval(src[i + 2]));
            dst[o++] = h;
            i += 2;
            continue;
        }
        dst[o++] = src[i];
    }
    return o;
}


/* OTEL_BSP_* and max_in_flight: conf, env, OpenTelemetry defaults. */
static int
tg_otlp_conf_bsp(tg_cycle_t *cycle, tg_otlp_conf_t *oc)
{
    int64_t  v;

    v = 2048;
    oc->src[TG_OTLP_S_QUEUE] = "default";
    if (oc->max_queue_size != TG_CONF_UNSET) {
        v = oc->max_queue_size;
        oc->src[TG_OTLP_S_QUEUE] = "conf";
    } else {
        tg_otlp_env_ms(cycle, "OTEL_BSP_MAX_QUEUE_SIZE", NULL, &v,
                       &oc->src[TG_OTLP_S_QUEUE]);
    }
    if (v < 1 || v > (1 << 20)) {
        snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                 "[otlp] max_queue_size (%s) must be 1..1048576",
                 oc->src[TG_OTLP_S_QUEUE]);
        return TG_ERROR;
    }
    oc->max_queue = (size_t) v;

    v = 512;
    oc->src[TG_OTLP_S_BATCH] = "default";
    if (oc->max_export_batch_size != TG_CONF_UNSET) {
        v = oc->max_export_batch_size;
        oc->src[TG_OTLP_S_BATCH] = "conf";
    } else {
        tg_otlp_env_ms(cycle, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", NULL, &v,
                       &oc->src[TG_OTLP_S_BATCH]);
    }
    if (v < 1) {
        snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                 "[otlp] max_export_batch_size (%s) must be positive",
                 oc->src[TG_OTLP_S_BATCH]);
        return TG_ERROR;
    }
    if ((size_t) v > oc->max_queue) {
        if (oc->src[TG_OTLP_S_BATCH][0] == 'c') {
            snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                     "[otlp] max_export_batch_size %" PRId64 " is larger "
                     "than max_queue_size %zu", v, oc->max_queue);
            return TG_ERROR;
        }
        /* the default 512 or an env value: the spec says it must fit */
        v = (int64_t) oc->max_queue;
    }
    oc->ex.max_export_batch_size = (size_t) v;

    oc->ex.schedule_delay_ms = 5000;
    oc->src[TG_OTLP_S_DELAY] = "default";
    if (oc->schedule_delay != TG_CONF_UNSET) {
        oc->ex.schedule_delay_ms = oc->schedule_delay;
        oc->src[TG_OTLP_S_DELAY] = "conf";
    } else {
        tg_otlp_env_ms(cycle, "OTEL_BSP_SCHEDULE_DELAY", NULL,
                       &oc->ex.schedule_delay_ms, &oc->src[TG_OTLP_S_DELAY]);
    }
    if (oc->ex.schedule_delay_ms < 1) {
        snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                 "[otlp] schedule_delay (%s) must be at least 1ms",
                 oc->src[TG_OTLP_S_DELAY]);
        return TG_ERROR;
    }

    oc->ex.export_timeout_ms = 30000;
    oc->src[TG_OTLP_S_EXPORT_TIMEOUT] = "default";
    if (oc->export_timeout != TG_CONF_UNSET) {
        oc->ex.export_timeout_ms = oc->export_timeout;
        oc->src[TG_OTLP_S_EXPORT_TIMEOUT] = "conf";
    } else {
        tg_otlp_env_ms(cycle, "OTEL_BSP_EXPORT_TIMEOUT", NULL,
                       &oc->ex.export_timeout_ms,
                       &oc->src[TG_OTLP_S_EXPORT_TIMEOUT]);
    }
    if (oc->ex.export_timeout_ms < 1) {
        snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                 "[otlp] export_timeout (%s) must be at least 1ms",
                 oc->src[TG_OTLP_S_EXPORT_TIMEOUT]);
        return TG_ERROR;
    }

    oc->ex.max_in_flight = 2;
    oc->src[TG_OTLP_S_IN_FLIGHT] = "default";
    if (oc->max_in_flight != TG_CONF_UNSET) {
        if (oc->max_in_flight < 1
            || oc->max_in_flight > TG_OTLP_MAX_IN_FLIGHT)
        {
            snprintf(cycle->conf_error, TG_CONF_ERRLEN,
                     "[otlp] max_in_flight must be 1..%d",
                     TG_OTLP_MAX_IN_FLIGHT);
            return TG_ERROR;
        }
        oc->ex.max_in_flight = (size_t) oc->max_in_flight;
        oc->src[TG_OTLP_S_IN_FLIGHT] = "conf";
    }
    return TG_OK;
}


/* An env value, NULL when unset or empty (empty means unset). */
static const char *
tg_otlp_env(const char *name)
{
    const char  *v;

    v = getenv(name);
    return (v && v[0]) ? v : NULL;
}


/* The per-signal variable, else the general one; *which names it. */
static const char *
tg_otlp_env2(const char *traces, const char *general, const char **which)
{
    const char  *v;

    static char  src[2][64];

    v = tg_otlp_env(traces);
    if (v) {
        snprintf(src[0], sizeof(src[0]), "env %s", traces);
        *which = src[0];
        return v;
    }
    if (general == NULL) {
        return NULL;
    }
    v = tg_otlp_env(general);
    if (v) {
        snprintf(src[1], sizeof(src[1]), "env %s", general);
        *which = src[1];
    }
    return v;
}


/*
 * A non-negative integer from the environment (milliseconds or a count):
 * sets *out and *src when it parses, warns and leaves them otherwise.
 */
static int
tg_otlp_env_ms(tg_cycle_t *cycle, const char *traces, const char *general,
    int64_t *out, const char **src)
{
    char         *s;
    size_t        len;
    int64_t       n;
    const char   *v, *which;

    which = NULL;
    v = general ? tg_otlp_env2(traces, general, &which) : tg_otlp_env(traces);
    if (v == NULL) {
        return TG_DECLINED;
    }
    if (which == NULL) {
        len = strlen(traces) + 5;
        s = tg_pnalloc(cycle->pool, len);
        if (s == NULL) {
            return TG_ERROR;
        }
        snprintf(s, len, "env %s", traces);
        which = s;
    } else {
        /* tg_otlp_env2's buffer is reused: keep a copy */
        len = strlen(which) + 1;
        s = tg_pnalloc(cycle->pool, len);
        if (s == NULL) {
            return TG_ERROR;
        }
        memcpy(s, which, len);
        which = s;
    }
    if (tg_atoi((const u_char *) v, strlen(v), &n) != TG_OK) {
        tg_log_error(TG_LOG_WARN, &tg_log_global, 0,
                     "%s=\"%s\" is not a non-negative integer, ignored",
                     which + 4, v);
        return TG_DECLINED;
    }
    *out = n;
    *src = which;
    return TG_OK;
}


static char *
tg_otlp_cstr(tg_pool_t *pool, const tg_str_t *s)
{
    return (char *) tg_pstrdup0(pool, (tg_str_t *) s);
}


/* path relative to the prefix unless absolute; NULL path gives NULL. */
static char *
tg_otlp_path(tg_pool_t *pool, const char *prefix, const char *path)
{
    char    *p;
    size_t   len;

    if (path == NULL) {
        return NULL;
    }
    if (path[0] == '/' || prefix == NULL) {
        len = strlen(path) + 1;
        p = tg_pnalloc(pool, len);
        if (p) {
            memcpy(p, path, len);
        }
        return p;
    }
    len = strlen(prefix) + strlen(path) + 2;
    p = tg_pnalloc(pool, len);
    if (p) {
        snprintf(p, len, "%s%s%s", prefix,
                 (prefix[0] && prefix[strlen(prefix) - 1] == '/') ? "" : "/",
                 path);
    }
    return p;
}


static void
tg_otlp_dump_conf(tg_cycle_t *cycle, void *conf, FILE *out)
{
    size_t           i;
    tg_otlp_conf_t  *oc = conf;

    static const char  *kinds[] = { "none", "otlp", "file", "console" };

    fprintf(out, "[otlp]\n");
    fprintf(out, "; effective settings; the comment says where each came "
                 "from (conf, env VAR or default)\n");
    fprintf(out, "exporter = %s ; %s\n", kinds[oc->ex.kind],
            oc->src[TG_OTLP_S_EXPORTER]);
    fprintf(out, "endpoint = %s ; %s\n",
            oc->ex.endpoint ? oc->ex.endpoint : "(none)",
            oc->src[TG_OTLP_S_ENDPOINT]);
    fprintf(out, "protocol = %s ; %s\n",
            oc->ex.json ? "http/json" : "http/protobuf",
            oc->src[TG_OTLP_S_PROTOCOL]);
    /* values may be API keys: names only */
    for (i = 0; i < oc->ex.nheaders; i++) {
        fprintf(out, "header = %.*s <redacted> ; %s\n",
                (int) strcspn(oc->ex.headers[i], ":"), oc->ex.headers[i],
                oc->src[TG_OTLP_S_HEADERS]);
    }
    fprintf(out, "compression = %s ; %s\n", oc->ex.gzip ? "gzip" : "none",
            oc->src[TG_OTLP_S_COMPRESSION]);
    fprintf(out, "timeout = %" PRId64 "ms ; %s\n", oc->ex.timeout_ms,
            oc->src[TG_OTLP_S_TIMEOUT]);
    fprintf(out, "certificate = %s ; %s\n",
            oc->ex.certificate ? oc->ex.certificate : "(system CAs)",
            oc->src[TG_OTLP_S_CERTIFICATE]);
    fprintf(out, "file = %s ; %s\n", oc->ex.file, oc->src[TG_OTLP_S_FILE]);
    fprintf(out, "max_queue_size = %zu ; %s\n", oc->max_queue,
            oc->src[TG_OTLP_S_QUEUE]);
    fprintf(out, "max_export_batch_size = %zu ; %s\n",
            oc->ex.max_export_batch_size, oc->src[TG_OTLP_S_BATCH]);
    fprintf(out, "schedule_delay = %" PRId64 "ms ; %s\n",
            oc->ex.schedule_delay_ms, oc->src[TG_OTLP_S_DELAY]);
    fprintf(out, "export_timeout = %" PRId64 "ms ; %s\n",
            oc->ex.export_timeout_ms, oc->src[TG_OTLP_S_EXPORT_TIMEOUT]);
    fprintf(out, "max_in_flight = %zu ; %s\n", oc->ex.max_in_flight,
            oc->src[TG_OTLP_S_IN_FLIGHT]);
}


static int
tg_otlp_init_process(tg_cycle_t *cycle)
{
    tg_otlp_conf_t  *oc;

    oc = tg_module_conf(cycle, tg_otlp_module);
    if (oc == NULL || oc->ex.kind == TG_OTLP_EXPORT_NONE) {
        return TG_OK;
    }

    if (tg_otlp_resource_init(cycle, &tg_otlp_process.resource) != TG_OK) {
        goto failed;
    }
    oc->ex.resource = &tg_otlp_process.resource;

    if (tg_span_sink_add(tg_otlp_sink, NULL) != TG_OK) {
        goto failed;
    }
    tg_otlp_process.ring = tg_otlp_ring_create(oc->max_queue, 0);
    if (tg_otlp_process.ring == NULL) {
        goto failed;
    }
    tg_otlp_process.exporter = tg_otlp_exporter_start(&oc->ex,
                                                      tg_otlp_process.ring,
                                                      tg_otlp_stats);
    if (tg_otlp_process.exporter == NULL) {
        goto failed;
    }
    return TG_OK;

failed:
    /* the proxy keeps working without span export */
    tg_log_error(TG_LOG_ERR, &tg_log_global, 0,
                 "otlp: span export disabled in this worker: could not "
                 "start the exporter");
    tg_otlp_ring_destroy(tg_otlp_process.ring);
    tg_otlp_process.ring = NULL;
    tg_otlp_resource_free(&tg_otlp_process.resource);
    return TG_OK;
}


static void
tg_otlp_exit_process(tg_cycle_t *cycle)
{
    int64_t          flush;
    tg_otlp_conf_t  *oc;

    if (tg_otlp_process.exporter == NULL) {
        return;
    }
    oc = tg_module_conf(cycle, tg_otlp_module);

    /* bounded by export_timeout and by the graceful stop deadline */
    flush = oc->ex.export_timeout_ms;
    if (cycle->main.shutdown_timeout > 0) {
        flush = tg_min(flush, cycle->main.shutdown_timeout);
    }
    tg_otlp_exporter_stop(tg_otlp_process.exporter, flush);
    tg_otlp_process.exporter = NULL;
    tg_otlp_ring_destroy(tg_otlp_process.ring);
    tg_otlp_process.ring = NULL;
    tg_otlp_resource_free(&tg_otlp_process.resource);
}


/*
 * Span sink subscriber: copies the sampled spans of a batch into the ring.
 * Received spans go out with the exporter's one resource (ours), so each
 * copy names its sender in tracegate.source.service.name.
 */
static void
tg_otlp_sink(const tg_span_batch_t *b, void *data)
{
    size_t            i;
    uint64_t          queued, dropped;
    const tg_span_t  *s;
    static tg_span_t  copy;

    if (b->local || tg_otlp_process.ring == NULL) {
        return;
    }
    queued = 0;
    dropped = 0;
    for (i = 0; i < b->n; i++) {
        s = &b->spans[i];
        if ((s->flags & 0x01) == 0) {
            continue;
        }
        if (b->received) {
            copy = *s;
            tg_span_str_lit(&copy, "tracegate.source.service.name",
                            b->service->data, b->service->len);
            s = &copy;
        }
        if (tg_otlp_ring_push(tg_otlp_process.ring, s) == TG_OK) {
            queued++;
        } else {
            dropped++;
        }
    }
    if (queued) {
        tg_otlp_stat_add(&tg_otlp_stats->queued, queued);
    }
    if (dropped) {
        tg_otlp_stat_add(&tg_otlp_stats->dropped_full, dropped);
    }
}


/*
 * The resource of this process: service.name from [trace], the configured
 * resource attributes (OTEL_RESOURCE_ATTRIBUTES included), then what the
 * user did not set: service.version, service.instance.id (random per
 * process, UUID v4 form), host.name; the telemetry.sdk.* keys always are
 * ours. telemetry.sdk.language is "c": the semantic conventions list no C
 * value and allow a custom one when none of theirs applies.
 */
static int
tg_otlp_resource_init(tg_cycle_t *cycle, tg_otlp_resource_t *res)
{
    char          host[256], uuid[37];
    size_t        i, max;
    u_char        b[16];
    uint64_t      r1, r2;
    tg_str_t     *sn;
    tg_keyval_t  *kv;

    max = 16 + (cycle->trace.resource ? cycle->trace.resource->nelts : 0);
    res->attrs = calloc(max, sizeof(tg_otlp_kv_t));
    res->nattrs = 0;
    if (res->attrs == NULL) {
        return TG_ERROR;
    }

    sn = &cycle->trace.service_name;
    if (sn->len) {
        tg_otlp_resource_add(res, max, (u_char *) "service.name", 12,
                             sn->data, sn->len);
    } else {
        tg_otlp_resource_add(res, max, (u_char *) "service.name", 12,
                             (u_char *) "tracegate", 9);
    }

    if (cycle->trace.resource) {
        kv = cycle->trace.resource->elts;
        for (i = 0; i < cycle->trace.resource->nelts; i++) {
            if (tg_str_caseeq_c(&kv[i].key, "service.name")
                || (kv[i].key.len >= 14
                    && memcmp(kv[i].key.data, "telemetry.sdk.", 14) == 0))
            {
                continue;
            }
            tg_otlp_resource_add(res, max, kv[i].key.data, kv[i].key.len,
                                 kv[i].value.data, kv[i].value.len);
        }
    }

    tg_otlp_resource_add(res, max, (u_char *) "service.version", 15,
                         (u_char *) TG_VERSION, sizeof(TG_VERSION) - 1);

    r1 = tg_random_u64();
    r2 = tg_random_u64();
    memcpy(b, &r1, 8);
    memcpy(b + 8, &r2, 8);
    b[6] = (u_char) ((b[6] & 0x0f) | 0x40);   /* RFC 4122 version 4 */
    b[8] = (u_char) ((b[8] & 0x3f) | 0x80);   /* variant 10 */
    snprintf(uuid, sizeof(uuid),
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
             b[10], b[11], b[12], b[13], b[14], b[15]);
    tg_otlp_resource_add(res, max, (u_char *) "service.instance.id", 19,
                         (u_char *) uuid, 36);

    if (gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = '\0';
        tg_otlp_resource_add(res, max, (u_char *) "host.name", 9,
                             (u_char *) host, strlen(host));
    }

    tg_otlp_resource_add(res, max, (u_char *) "telemetry.sdk.name", 18,
                         (u_char *) "tracegate", 9);
    tg_otlp_resource_add(res, max, (u_char *) "telemetry.sdk.language", 22,
                         (u_char *) "c", 1);
    tg_otlp_resource_add(res, max, (u_char *) "telemetry.sdk.version", 21,
                         (u_char *) TG_VERSION, sizeof(TG_VERSION) - 1);
    return TG_OK;
}


/* Adds key=value unless the key is there already (first one wins). */
static int
tg_otlp_resource_add(tg_otlp_resource_t *res, size_t max, const u_char *key,
    size_t klen, const u_char *val, size_t vlen)
{
    char          *k, *v;
    size_t         i;
    tg_otlp_kv_t  *a;

    for (i = 0; i < res->nattrs; i++) {
        if (strlen(res->attrs[i].key) == klen
            && memcmp(res->attrs[i].key, key, klen) == 0)
        {
            return TG_DECLINED;
        }
    }
    if (res->nattrs == max) {
        return TG_DECLINED;
    }
    k = malloc(3 * klen + 1);
    v = malloc(3 * vlen + 1);
    if (k == NULL || v == NULL) {
        free(k);
        free(v);
        return TG_ERROR;
    }
    k[tg_utf8_sanitize((u_char *) k, key, klen)] = '\0';
    v[tg_utf8_sanitize((u_char *) v, val, vlen)] = '\0';
    a = &res->attrs[res->nattrs++];
    a->key = k;
    a->value = v;
    return TG_OK;
}


static void
tg_otlp_resource_free(tg_otlp_resource_t *res)
{
    size_t  i;

    for (i = 0; i < res->nattrs; i++) {
        free(res->attrs[i].key);
        free(res->attrs[i].value);
    }
    free(res->attrs);
    res->attrs = NULL;
    res->nattrs = 0;
}
