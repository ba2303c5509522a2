#include <tg_config.h>
#include <tg_core.h>
#include <tg_cycle.h>


tg_cycle_t  *tg_cycle;

static char *tg_cycle_set_listen(tg_conf_t *cf, tg_command_t *cmd,
    void *conf);
static char *tg_cycle_set_workers(tg_conf_t *cf, tg_command_t *cmd,
    void *conf);
static char *tg_cycle_set_ratio(tg_conf_t *cf, tg_command_t *cmd,
    void *conf);
static char *tg_cycle_set_header_list(tg_conf_t *cf, tg_command_t *cmd,
    void *conf);
static int tg_cycle_init_main(tg_cycle_t *cycle);
static int tg_cycle_init_trace(tg_cycle_t *cycle);
static int tg_cycle_load_pages(tg_cycle_t *cycle);
static void tg_cycle_dump_file(FILE *fp, FILE *out);


tg_command_t  tg_main_commands[] = {
    { tg_string("listen"), TG_CONF_MULTI, tg_cycle_set_listen, 0 },
    { tg_string("workers"), TG_CONF_TAKE1, tg_cycle_set_workers,
      offsetof(tg_main_conf_t, workers) },
    { tg_string("daemon"), TG_CONF_TAKE1, tg_conf_set_flag,
      offsetof(tg_main_conf_t, daemon) },
    { tg_string("pid"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_main_conf_t, pid) },
    { tg_string("error_log"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_main_conf_t, error_log) },
    { tg_string("worker_connections"), TG_CONF_TAKE1, tg_conf_set_num,
      offsetof(tg_main_conf_t, worker_connections) },
    { tg_string("client_header_timeout"), TG_CONF_TAKE1, tg_conf_set_msec,
      offsetof(tg_main_conf_t, client_header_timeout) },
    { tg_string("client_body_timeout"), TG_CONF_TAKE1, tg_conf_set_msec,
      offsetof(tg_main_conf_t, client_body_timeout) },
    { tg_string("keepalive_timeout"), TG_CONF_TAKE1, tg_conf_set_msec,
      offsetof(tg_main_conf_t, keepalive_timeout) },
    { tg_string("keepalive_requests"), TG_CONF_TAKE1, tg_conf_set_num,
      offsetof(tg_main_conf_t, keepalive_requests) },
    { tg_string("send_timeout"), TG_CONF_TAKE1, tg_conf_set_msec,
      offsetof(tg_main_conf_t, send_timeout) },
    { tg_string("client_max_body_size"), TG_CONF_TAKE1, tg_conf_set_size,
      offsetof(tg_main_conf_t, client_max_body_size) },
    { tg_string("client_max_header_size"), TG_CONF_TAKE1, tg_conf_set_size,
      offsetof(tg_main_conf_t, client_max_header_size) },
    { tg_string("client_max_headers"), TG_CONF_TAKE1, tg_conf_set_num,
      offsetof(tg_main_conf_t, client_max_headers) },
    { tg_string("client_max_uri_size"), TG_CONF_TAKE1, tg_conf_set_size,
      offsetof(tg_main_conf_t, client_max_uri_size) },
    { tg_string("proxy_buffer_size"), TG_CONF_TAKE1, tg_conf_set_size,
      offsetof(tg_main_conf_t, proxy_buffer_size) },
    { tg_string("html"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_main_conf_t, html) },
    { tg_string("health"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_main_conf_t, health) },
    { tg_string("server_tokens"), TG_CONF_TAKE1, tg_conf_set_flag,
      offsetof(tg_main_conf_t, server_tokens) },

    { tg_string("reject_ambiguous_paths"), TG_CONF_TAKE1, tg_conf_set_flag,
      offsetof(tg_main_conf_t, reject_ambiguous_paths) },
    { tg_string("shutdown_timeout"), TG_CONF_TAKE1, tg_conf_set_msec,
      offsetof(tg_main_conf_t, shutdown_timeout) },
    { tg_string("tunnel_timeout"), TG_CONF_TAKE1, tg_conf_set_msec,
      offsetof(tg_main_conf_t, tunnel_timeout) },
    { tg_string("trusted_proxy"), TG_CONF_MULTI, tg_conf_add_str,
      offsetof(tg_main_conf_t, trusted_proxies) },
    tg_null_command
};


tg_command_t  tg_trace_commands[] = {
    { tg_string("service_name"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_trace_conf_t, service_name) },
    { tg_string("resource"), TG_CONF_MULTI, tg_conf_add_keyval,
      offsetof(tg_trace_conf_t, resource) },
    { tg_string("sampler"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_trace_conf_t, sampler) },
    { tg_string("sampler_arg"), TG_CONF_TAKE1, tg_cycle_set_ratio,
      offsetof(tg_trace_conf_t, sampler_arg) },
    { tg_string("propagators"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_trace_conf_t, propagators) },
    { tg_string("x_trace_id"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_trace_conf_t, x_trace_id) },
    { tg_string("x_trace_id_format"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_trace_conf_t, x_trace_id_format) },
    { tg_string("traceresponse"), TG_CONF_TAKE1, tg_conf_set_flag,
      offsetof(tg_trace_conf_t, traceresponse) },
    { tg_string("tracestate_limit"), TG_CONF_TAKE1, tg_conf_set_size,
      offsetof(tg_trace_conf_t, tracestate_limit) },
    { tg_string("capture_request_header"), TG_CONF_MULTI,
      tg_cycle_set_header_list,
      offsetof(tg_trace_conf_t, capture_request_headers) },
    { tg_string("capture_response_header"), TG_CONF_MULTI,
      tg_cycle_set_header_list,
      offsetof(tg_trace_conf_t, capture_response_headers) },
    { tg_string("attribute_count_limit"), TG_CONF_TAKE1, tg_conf_set_num,
      offsetof(tg_trace_conf_t, attribute_count_limit) },
    { tg_string("attribute_value_length_limit"), TG_CONF_TAKE1,
      tg_conf_set_num,
      offsetof(tg_trace_conf_t, attribute_value_length_limit) },
    tg_null_command
};


int
tg_parse_addr(tg_pool_t *pool, tg_str_t *text, int default_any,
    struct sockaddr_storage *addr, socklen_t *len)
{
    int                   rc;
    char                 *host, *port;
    size_t                i;
    int64_t               p;
    tg_str_t              h, ps;
    struct addrinfo       hints, *res;
    struct sockaddr_in   *sin;

    h.data = NULL;
    h.len = 0;
    ps = *text;
    if (text->len && text->data[0] == '[') {
        for (i = 1; i < text->len && text->data[i] != ']'; i++) {
            /* find ']' */
        }
        if (i == text->len || i + 1 >= text->len || text->data[i + 1] != ':') {
            return TG_ERROR;
        }
        h.data = text->data + 1;
        h.len = i - 1;
        ps.data = text->data + i + 2;
        ps.len = text->len - i - 2;
    } else {
        for (i = text->len; i > 0 && text->data[i - 1] != ':'; i--) {
            /* last ':' */
        }
        if (i > 0) {
            h.data = text->data;
            h.len = i - 1;
            ps.data = text->data + i;
            ps.len = text->len - i;
        } else if (!default_any) {
            return TG_ERROR;
        }
    }
    if (tg_atoi(ps.data, ps.len, &p) != TG_OK || p < 1 || p > 65535) {
        return TG_ERROR;
    }
    memset(addr, 0, sizeof(*addr));
    if (h.len == 0 || (h.len == 1 && h.data[0] == '*')) {
        if (!default_any) {
            return TG_ERROR;
        }
        sin = (struct sockaddr_in *) addr;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t) p);
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        *len = sizeof(struct sockaddr_in);
        return TG_OK;
    }
    host = (char *) tg_pstrdup0(pool, &h);
    port = (char *) tg_pstrdup0(pool, &ps);
    if (host == NULL || port == NULL) {
        return TG_ERROR;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        return TG_ERROR;
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return TG_OK;
}


static char *
tg_cycle_set_listen(tg_conf_t *cf, tg_command_t *cmd, void *conf)
{
    tg_str_t         rest, tok;
    tg_listen_t     *ls;
    int64_t          n;
    tg_main_conf_t  *mcf;

    mcf = conf;
    if (mcf->listens.nelts >= 60) {
        return "at most 60 listen addresses; dropped";
    }
    ls = tg_array_push(&mcf->listens);
    if (ls == NULL) {
        return "out of memory for";
    }
    ls->conf_file = cf->file;
    ls->conf_line = cf->line;
    rest = cf->value;
    if (!tg_str_next_token(&rest, ' ', &tok) || tok.len == 0) {
        return "needs an address";
    }
    if (tg_pstrcopy(cf->pool, &ls->text, tok.data, tok.len) != TG_OK) {
        return "out of memory for";
    }
    if (tg_parse_addr(cf->pool, &tok, 1, &ls->addr, &ls->addrlen) != TG_OK) {
        return "invalid address (use 127.0.0.1:8080, [::1]:8080 or 8080)";
    }
    ls->backlog = 511;
    while (tg_str_next_token(&rest, ' ', &tok)) {
        if (tok.len == 0) {
            continue;
        }
        if (tg_str_caseeq_c(&tok, "ssl")) {
            ls->ssl = 1;
        } else if (tok.len > 4 && strncasecmp((char *) tok.data, "ssl=", 4) == 0)
        {
            ls->ssl = 1;
            if (tg_pstrcopy(cf->pool, &ls->ssl_name, tok.data + 4, tok.len - 4)
                != TG_OK)
            {
                return "out of memory for";
            }
        } else if (tok.len > 8 && memcmp(tok.data, "backlog=", 8) == 0
                   && tg_atoi(tok.data + 8, tok.len - 8, &n) == TG_OK
                   && n > 0 && n <= 65535)
        {
            ls->backlog = (int) n;
        } else {
            return "unknown listen option in";
        }
    }
    return TG_CONF_OK;
}


static char *
tg_cycle_set_workers(tg_conf_t *cf, tg_command_t *cmd, void *conf)
{
    int64_t  *n;

    n = (int64_t *) ((u_char *) conf + cmd->offset);
    if (tg_str_caseeq_c(&cf->value, "auto")) {
        *n = 0;
        return TG_CONF_OK;
    }
    if (tg_atoi(cf->value.data, cf->value.len, n) != TG_OK || *n < 1
        || *n > 64)
    {
        return "must be \"auto\" or 1..64, not";
    }
    return TG_CONF_OK;
}


static char *
tg_cycle_set_ratio(tg_conf_t *cf, tg_command_t *cmd, void *conf)
{
    char    *end, *s;
    double  *d, v;

    d = (double *) ((u_char *) conf + cmd->offset);
    s = (char *) tg_pstrdup0(cf->pool, &cf->value);
    if (s == NULL) {
        return "out of memory for";
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v >= 0.0 && v <= 1.0)) {
        return "must be a number from 0 to 1, not";
    }
    *d = v;
    return TG_CONF_OK;
}


/* values that never reach a span or a log line */
static int
tg_cycle_secret_header(const tg_str_t *name)
{
    return tg_str_caseeq_c(name, "authorization")
           || tg_str_caseeq_c(name, "proxy-authorization")
           || tg_str_caseeq_c(name, "cookie")
           || tg_str_caseeq_c(name, "set-cookie");
}


static char *
tg_cycle_set_header_list(tg_conf_t *cf, tg_command_t *cmd, void *conf)
{
    size_t     i;
    char      *rv;
    tg_str_t  *names;
    tg_array_t **a;

    rv = tg_conf_add_str(cf, cmd, conf);
    if (rv != TG_CONF_OK) {
        return rv;
    }
    a = (tg_array_t **) ((u_char *) conf + cmd->offset);
    names = (*a)->elts;
    names = &names[(*a)->nelts - 1];
    for (i = 0; i < names->len; i++) {
        names->data[i] = tg_tolower(names->data[i]);
    }
    if (tg_cycle_secret_header(names)) {
        return "never captured (credentials):";
    }
    return TG_CONF_OK;
}


static int
tg_cycle_error(tg_cycle_t *cycle, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(cycle->conf_error, sizeof(cycle->conf_error), fmt, args);
    va_end(args);
    return TG_ERROR;
}


static int
tg_cycle_init_main(tg_cycle_t *cycle)
{
    tg_main_conf_t  *m;
    tg_listen_t     *ls;
    tg_str_t         text = tg_string("0.0.0.0:8080");

    m = &cycle->main;
    if (m->listens.nelts == 0) {
        ls = tg_array_push(&m->listens);
        if (ls == NULL) {
            return TG_ERROR;
        }
        ls->text = text;
        tg_parse_addr(cycle->pool, &text, 1, &ls->addr, &ls->addrlen);
        ls->backlog = 511;
    }
    tg_conf_default(m->workers, 1);
    tg_conf_default(m->daemon, 1);
    tg_conf_default(m->worker_connections, 10000);
    tg_conf_default(m->client_header_timeout, 60000);
    tg_conf_default(m->client_body_timeout, 60000);
    tg_conf_default(m->keepalive_timeout, 75000);
    tg_conf_default(m->keepalive_requests, 1000);
    tg_conf_default(m->send_timeout, 60000);
    tg_conf_default(m->client_max_body_size, 1024 * 1024);
    tg_conf_default(m->client_max_header_size, 32 * 1024);
    tg_conf_default(m->client_max_headers, 100);
    tg_conf_default(m->client_max_uri_size, 8 * 1024);
    tg_conf_default(m->proxy_buffer_size, 64 * 1024);
    tg_conf_default(m->server_tokens, 1);
    tg_conf_default(m->reject_ambiguous_paths, 1);
    tg_conf_default(m->shutdown_timeout, 30000);
    tg_conf_default(m->tunnel_timeout, 3600000);
    tg_conf_default_str(m->pid, "logs/tracegate.pid");
    tg_conf_default_str(m->error_log, "logs/error.log notice");
    tg_conf_default_str(m->html, "html");
    tg_conf_default_str(m->health, "/health");
    if (m->worker_connections < 16) {
        return tg_cycle_error(cycle, "worker_connections must be at least 16");
    }
    if (m->proxy_buffer_size < 4096) {
        return tg_cycle_error(cycle, "proxy_buffer_size must be at least 4k");
    }
    if (m->client_max_header_size < 1024 || m->client_max_headers < 1) {
        return tg_cycle_error(cycle, "client_max_header_size must be at least"
                                     " 1k and client_max_headers at least 1");
    }
    if (m->health.len && m->health.data[0] != '/'
        && !tg_str_caseeq_c(&m->health, "off"))
    {
        return tg_cycle_error(cycle, "health must be a path or \"off\"");
    }
    if (tg_str_caseeq_c(&m->health, "off")) {
        m->health.len = 0;
    }
    if (m->trusted_proxies) {
        size_t      i;
        int         rc;
        tg_str_t   *tp;
        tg_cidr_t  *cidr;

        m->trusted_cidrs = tg_array_create(cycle->pool,
                                           m->trusted_proxies->nelts,
                                           sizeof(tg_cidr_t));
        if (m->trusted_cidrs == NULL) {
            return TG_ERROR;
        }
        tp = m->trusted_proxies->elts;
        for (i = 0; i < m->trusted_proxies->nelts; i++) {
            cidr = tg_array_push(m->trusted_cidrs);
            if (cidr == NULL) {
                return TG_ERROR;
            }
            rc = tg_cidr_parse(cycle->pool, &tp[i], cidr);
            if (rc == TG_ERROR) {
                return TG_ERROR;
            }
            if (rc != TG_OK) {
                return tg_cycle_error(cycle, "trusted_proxy \"" TG_STR_FMT
                                      "\" is not an address or CIDR",
                                      TG_STR_ARG(&tp[i]));
            }
        }
    }
    return TG_OK;
}


int
tg_cidr_match(tg_array_t *cidrs, struct sockaddr *sa)
{
    int            bits;
    size_t         i, k;
    u_char         mask;
    const u_char  *a;
    tg_cidr_t     *c;

    if (cidrs == NULL) {
        return 0;
    }
    c = cidrs->elts;
    for (i = 0; i < cidrs->nelts; i++) {
        if (c[i].family != sa->sa_family) {
            continue;
        }
        a = (sa->sa_family == AF_INET)
                ? (const u_char *) &((struct sockaddr_in *) sa)->sin_addr
                : (const u_char *) &((struct sockaddr_in6 *) sa)->sin6_addr;
        bits = c[i].bits;
        for (k = 0; bits > 0; k++, bits -= 8) {
            mask = bits >= 8 ? 0xff : (u_char) (0xff << (8 - bits));
            if ((a[k] & mask) != (c[i].addr[k] & mask)) {
                break;
            }
        }
        if (bits <= 0) {
            return 1;
        }
    }
    return 0;
}


int
tg_cidr_parse(tg_pool_t *pool, const tg_str_t *text, tg_cidr_t *cidr)
{
    int64_t   bits;
    char     *addr, *slash;
    tg_str_t  b;

    addr = (char *) tg_pstrdup0(pool, (tg_str_t *) text);
    if (addr == NULL) {
        return TG_ERROR;
    }
    slash = strchr(addr, '/');
    if (slash) {
        *slash++ = '\0';
    }
    memset(cidr, 0, sizeof(tg_cidr_t));
    if (inet_pton(AF_INET, addr, cidr->addr) == 1) {
        cidr->family = AF_INET;
        cidr->bits = 32;
    } else if (inet_pton(AF_INET6, addr, cidr->addr) == 1) {
        cidr->family = AF_INET6;
        cidr->bits = 128;
    } else {
        return TG_DECLINED;
    }
    if (slash) {
        b.data = (u_char *) slash;
        b.len = strlen(slash);
        if (b.len == 0 || tg_atoi(b.data, b.len, &bits) != TG_OK || bits < 0
            || bits > cidr->bits)
        {
            return TG_DECLINED;
        }
        cidr->bits = (int) bits;
    }
    return TG_OK;
}


char *
tg_conf_set_allow(tg_conf_t *cf, tg_command_t *cmd, void *conf)
{
    int           rc;
    tg_str_t      text;
    tg_cidr_t    *cidr;
    tg_array_t  **a;

    a = (tg_array_t **) ((u_char *) conf + cmd->offset);
    if (*a == NULL) {
        *a = tg_array_create(cf->pool, 4, sizeof(tg_cidr_t));
        if (*a == NULL) {
            return "out of memory for";
        }
    }
    text = cf->value;
    tg_str_trim_ows(&text);
    if (tg_str_caseeq_c(&text, "all")) {
        cidr = tg_array_push(*a);
        if (cidr == NULL) {
            return "out of memory for";
        }
        memset(cidr, 0, sizeof(tg_cidr_t));
        cidr->family = AF_INET;
        cidr = tg_array_push(*a);
        if (cidr == NULL) {
            return "out of memory for";
        }
        memset(cidr, 0, sizeof(tg_cidr_t));
        cidr->family = AF_INET6;
        return TG_CONF_OK;
    }
    cidr = tg_array_push(*a);
    if (cidr == NULL) {
        return "out of memory for";
    }
    rc = tg_cidr_parse(cf->pool, &text, cidr);
    if (rc == TG_ERROR) {
        return "out of memory for";
    }
    if (rc != TG_OK) {
        tg_conf_error(cf, "allow: \"" TG_STR_FMT "\" is not an address, a "
                      "CIDR or \"all\"", TG_STR_ARG(&text));
        return "invalid value";
    }
    return TG_CONF_OK;
}


int
tg_allow_default(tg_pool_t *pool, tg_array_t **allow)
{
    tg_cidr_t  *cidr;

    if (*allow != NULL) {
        return TG_OK;
    }
    *allow = tg_array_create(pool, 2, sizeof(tg_cidr_t));
    if (*allow == NULL) {
        return TG_ERROR;
    }
    cidr = tg_array_push(*allow);
    if (cidr == NULL) {
        return TG_ERROR;
    }
    memset(cidr, 0, sizeof(tg_cidr_t));
    cidr->family = AF_INET;
    cidr->bits = 32;
    cidr->addr[0] = 127;
    cidr->addr[3] = 1;
    cidr = tg_array_push(*allow);
    if (cidr == NULL) {
        return TG_ERROR;
    }
    memset(cidr, 0, sizeof(tg_cidr_t));
    cidr->family = AF_INET6;
    cidr->bits = 128;
    cidr->addr[15] = 1;
    return TG_OK;
}


int
tg_allow_open(tg_array_t *allow)
{
    size_t      i;
    tg_cidr_t  *c;

    static const u_char  v4mapped[12] = { [10] = 0xff, [11] = 0xff };
    static const u_char  v6loop[16] = { [15] = 1 };

    if (allow == NULL) {
        return 0;
    }
    c = allow->elts;
    for (i = 0; i < allow->nelts; i++) {
        if (c[i].family == AF_INET) {
            if (c[i].bits < 8 || c[i].addr[0] != 127) {
                return 1;
            }
        } else if (c[i].bits == 128
                   && memcmp(c[i].addr, v6loop, 16) == 0)
        {
            continue;
        } else if (c[i].bits < 104 || memcmp(c[i].addr, v4mapped, 12) != 0
                   || c[i].addr[12] != 127)
        {
            return 1;
        }
    }
    return 0;
}


void
tg_allow_dump(FILE *out, tg_array_t *allow)
{
    char        text[INET6_ADDRSTRLEN];
    size_t      i;
    tg_cidr_t  *c;

    if (allow == NULL) {
        return;
    }
    c = allow->elts;
    for (i = 0; i < allow->nelts; i++) {
        inet_ntop(c[i].family, c[i].addr, text, sizeof(text));
        fprintf(out, "allow = %s/%d\n", text, c[i].bits);
    }
}


/* OTEL_* variables: empty means unset (SDK environment rules) */
static const char *
tg_cycle_env(const char *name)
{
    const char  *v;

    v = getenv(name);
    return (v && *v) ? v : NULL;
}


static int
tg_cycle_init_trace(tg_cycle_t *cycle)
{
    char             *end;
    double            d;
    const char       *env;
    tg_str_t          rest, tok, k, v;
    tg_keyval_t      *kv;
    tg_trace_conf_t  *t;

    t = &cycle->trace;
    env = tg_cycle_env("OTEL_SERVICE_NAME");
    if (t->service_name.data == NULL && env) {
        t->service_name.data = (u_char *) env;
        t->service_name.len = strlen(env);
    }
    env = tg_cycle_env("OTEL_RESOURCE_ATTRIBUTES");
    if (env) {
        rest.data = (u_char *) env;
        rest.len = strlen(env);
        while (tg_str_next_token(&rest, ',', &tok)) {
            u_char  *eq = memchr(tok.data, '=', tok.len);

            if (eq == NULL || eq == tok.data) {
                continue; /* malformed members are skipped, as SDKs do */
            }
            k.data = tok.data;
            k.len = (size_t) (eq - tok.data);
            v.data = eq + 1;
            v.len = tok.len - k.len - 1;
            tg_str_trim_ows(&k);
            tg_str_trim_ows(&v);
            if (t->service_name.data == NULL
                && tg_str_caseeq_c(&k, "service.name"))
            {
                t->service_name = v;
                continue;
            }
            if (t->resource == NULL) {
                t->resource = tg_array_create(cycle->pool, 4,
                                              sizeof(tg_keyval_t));
            }
            kv = t->resource ? tg_array_push(t->resource) : NULL;
            if (kv == NULL) {
                return TG_ERROR;
            }
            kv->key = k;
            kv->value = v;
        }
    }
    tg_conf_default_str(t->service_name, "tracegate");

    env = tg_cycle_env("OTEL_TRACES_SAMPLER");
    if (t->sampler.data == NULL && env) {
        t->sampler.data = (u_char *) env;
        t->sampler.len = strlen(env);
    }
    tg_conf_default_str(t->sampler, "parentbased_always_on");
    env = tg_cycle_env("OTEL_TRACES_SAMPLER_ARG");
    if (t->sampler_arg < 0 && env) {
        d = strtod(env, &end);
        if (end != env && *end == '\0' && d >= 0.0 && d <= 1.0) {
            t->sampler_arg = d;
        } else {
            tg_log_error(TG_LOG_WARN, &tg_log_global, 0,
                         "OTEL_TRACES_SAMPLER_ARG=\"%s\" ignored: not a "
                         "ratio from 0 to 1", env);
        }
    }
    if (t->sampler_arg < 0) {
        t->sampler_arg = 1.0;
    }
    env = tg_cycle_env("OTEL_PROPAGATORS");
    if (t->propagators.data == NULL && env) {
        t->propagators.data = (u_char *) env;
        t->propagators.len = strlen(env);
    }
    tg_conf_default_str(t->propagators, "tracecontext");
    tg_conf_default_str(t->x_trace_id, "X-Trace-ID");
    if (tg_str_caseeq_c(&t->x_trace_id, "off")) {
        t->x_trace_id.len = 0;
    }
    tg_conf_default_str(t->x_trace_id_format, "hex");
    tg_conf_default(t->traceresponse, 1);
    tg_conf_default(t->tracestate_limit, 512);
    env = tg_cycle_env("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT");
    if (env == NULL) {
        env = tg_cycle_env("OTEL_ATTRIBUTE_COUNT_LIMIT");
    }
    if (t->attribute_count_limit == TG_CONF_UNSET && env) {
        t->attribute_count_limit = strtol(env, &end, 10);
        if (*end != '\0' || t->attribute_count_limit < 0) {
            t->attribute_count_limit = TG_CONF_UNSET;
        }
    }
    tg_conf_default(t->attribute_count_limit, 128);
    env = tg_cycle_env("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT");
    if (env == NULL) {
        env = tg_cycle_env("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT");
    }
    if (t->attribute_value_length_limit == TG_CONF_UNSET && env) {
        t->attribute_value_length_limit = strtol(env, &end, 10);
        if (*end != '\0' || t->attribute_value_length_limit < 0) {
            t->attribute_value_length_limit = TG_CONF_UNSET;
        }
    }
    tg_conf_default(t->attribute_value_length_limit, 0);
    if (tg_trace_sampler_init(&t->sampler_rt, &t->sampler, t->sampler_arg)
        != TG_OK)
    {
        return tg_cycle_error(cycle, "[trace] sampler \"" TG_STR_FMT "\" is "
                              "unknown (always_on, always_off, traceidratio, "
                              "parentbased_always_on, parentbased_always_off, "
                              "parentbased_traceidratio)",
                              TG_STR_ARG(&t->sampler));
    }
    if (tg_trace_propagators_parse(&t->propagators, &t->props) != TG_OK) {
        return tg_cycle_error(cycle, "[trace] propagators \"" TG_STR_FMT
                              "\": use tracecontext, b3, b3multi, jaeger or "
                              "none", TG_STR_ARG(&t->propagators));
    }
    t->xid_format = tg_trace_xid_format_parse(&t->x_trace_id_format);
    if (t->xid_format == TG_ERROR) {
        return tg_cycle_error(cycle, "[trace] x_trace_id_format \"" TG_STR_FMT
                              "\": use hex, uuid or time",
                              TG_STR_ARG(&t->x_trace_id_format));
    }
    for (size_t i = 0; i < t->x_trace_id.len; i++) {
        u_char  ch = t->x_trace_id.data[i];

        if (!(isalnum(ch) || ch == '-' || ch == '_')) {
            return tg_cycle_error(cycle, "[trace] x_trace_id \"" TG_STR_FMT
                                  "\" is not a header name",
                                  TG_STR_ARG(&t->x_trace_id));
        }
    }
    if (t->attribute_count_limit > 65535) {
        t->attribute_count_limit = 65535;
    }
    if (t->attribute_value_length_limit > 65535) {
        t->attribute_value_length_limit = 65535;
    }
    return TG_OK;
}


static int
tg_cycle_read_page(tg_cycle_t *cycle, const char *dir, const char *name,
    tg_str_t *page)
{
    int          fd;
    char         path[PATH_MAX];
    ssize_t      n;
    struct stat  st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        page->len = 0; /* the built-in body is used */
        return TG_OK;
    }
    if (fstat(fd, &st) < 0 || st.st_size > 1024 * 1024) {
        close(fd);
        return tg_cycle_error(cycle, "page \"%s\" unreadable or over 1m",
                              path);
    }
    page->data = tg_pnalloc(cycle->pool, (size_t) st.st_size + 1);
    if (page->data == NULL) {
        close(fd);
        return TG_ERROR;
    }
    n = read(fd, page->data, (size_t) st.st_size);
    close(fd);
    if (n != st.st_size) {
        return tg_cycle_error(cycle, "short read of page \"%s\"", path);
    }
    page->len = (size_t) n;
    return TG_OK;
}


static int
tg_cycle_load_pages(tg_cycle_t *cycle)
{
    char  *dir;

    dir = tg_conf_full_path(cycle->pool, cycle->prefix, &cycle->main.html);
    if (dir == NULL) {
        return TG_ERROR;
    }
    if (tg_cycle_read_page(cycle, dir, "index.html", &cycle->page_index)
            != TG_OK
        || tg_cycle_read_page(cycle, dir, "404.html", &cycle->page_404)
               != TG_OK
        || tg_cycle_read_page(cycle, dir, "50x.html", &cycle->page_50x)
               != TG_OK)
    {
        return TG_ERROR;
    }
    return TG_OK;
}


static void
tg_cycle_init_unset(tg_cycle_t *cycle)
{
    tg_main_conf_t   *m;
    tg_trace_conf_t  *t;

    m = &cycle->main;
    m->workers = TG_CONF_UNSET;
    m->daemon = TG_CONF_UNSET;
    m->worker_connections = TG_CONF_UNSET;
    m->client_header_timeout = TG_CONF_UNSET;
    m->client_body_timeout = TG_CONF_UNSET;
    m->keepalive_timeout = TG_CONF_UNSET;
    m->keepalive_requests = TG_CONF_UNSET;
    m->send_timeout = TG_CONF_UNSET;
    m->client_max_body_size = TG_CONF_UNSET;
    m->client_max_header_size = TG_CONF_UNSET;
    m->client_max_headers = TG_CONF_UNSET;
    m->client_max_uri_size = TG_CONF_UNSET;
    m->proxy_buffer_size = TG_CONF_UNSET;
    m->server_tokens = TG_CONF_UNSET;
    m->reject_ambiguous_paths = TG_CONF_UNSET;
    m->shutdown_timeout = TG_CONF_UNSET;
    m->tunnel_timeout = TG_CONF_UNSET;
    t = &cycle->trace;
    t->sampler_arg = -1.0;
    t->traceresponse = TG_CONF_UNSET;
    t->tracestate_limit = TG_CONF_UNSET;
    t->attribute_count_limit = TG_CONF_UNSET;
    t->attribute_value_length_limit = TG_CONF_UNSET;
}


tg_cycle_t *
tg_cycle_load(const char *prefix, const char *conf_file, char *err,
    size_t errlen)
{
    size_t       i, nmodules, plen;
    tg_str_t     cfile;
    tg_pool_t   *pool;
    tg_conf_t    cf;
    tg_cycle_t  *cycle;

    pool = tg_pool_create(16384);
    if (pool == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cycle = tg_pcalloc(pool, sizeof(tg_cycle_t));
    if (cycle == NULL) {
        goto nomem;
    }
    cycle->pool = pool;
    plen = strlen(prefix);
    cycle->prefix = tg_pnalloc(pool, plen + 2);
    if (cycle->prefix == NULL) {
        goto nomem;
    }
    memcpy(cycle->prefix, prefix, plen);
    if (plen == 0 || prefix[plen - 1] != '/') {
        cycle->prefix[plen++] = '/';
    }
    cycle->prefix[plen] = '\0';
    cfile.data = (u_char *) conf_file;
    cfile.len = strlen(conf_file);
    cycle->conf_file = tg_conf_full_path(pool, cycle->prefix, &cfile);

    nmodules = tg_module_init_indexes();
    cycle->module_conf = tg_pcalloc(pool, (nmodules + 1) * sizeof(void *));
    cycle->module_seen = tg_pcalloc(pool, nmodules + 1);
    if (cycle->conf_file == NULL || cycle->module_conf == NULL
        || cycle->module_seen == NULL
        || tg_array_init(&cycle->main.listens, pool, 2, sizeof(tg_listen_t))
               != TG_OK
        || tg_array_init(&cycle->conf_files, pool, 2, sizeof(tg_str_t))
               != TG_OK)
    {
        goto nomem;
    }
    tg_cycle_init_unset(cycle);
    for (i = 0; i < nmodules; i++) {
        if (tg_modules[i]->create_conf) {
            cycle->module_conf[i] = tg_modules[i]->create_conf(cycle);
            if (cycle->module_conf[i] == NULL) {
                goto nomem;
            }
        }
    }

    memset(&cf, 0, sizeof(cf));
    cf.pool = pool;
    cf.cycle = cycle;
    cf.seen = tg_array_create(pool, 8, sizeof(tg_str_t));
    if (cf.seen == NULL) {
        goto nomem;
    }
    if (tg_conf_parse_file(&cf, cycle->conf_file) != TG_OK) {
        snprintf(err, errlen, "%s", cf.error);
        goto failed;
    }

    if (tg_cycle_init_main(cycle) != TG_OK
        || tg_cycle_init_trace(cycle) != TG_OK)
    {
        goto conf_failed;
    }
    for (i = 0; i < nmodules; i++) {
        if (tg_modules[i]->init_conf
            && tg_modules[i]->init_conf(cycle, cycle->module_conf[i]) != TG_OK)
        {
            goto conf_failed;
        }
    }
    if (tg_cycle_load_pages(cycle) != TG_OK) {
        goto conf_failed;
    }
    return cycle;

conf_failed:
    snprintf(err, errlen, "%s: %s", cycle->conf_file,
             cycle->conf_error[0] ? cycle->conf_error : "invalid");
    if (strchr(cycle->conf_error, ':') && cycle->conf_error[0] == '/') {
        snprintf(err, errlen, "%s", cycle->conf_error);
    }
    goto failed;
nomem:
    snprintf(err, errlen, "out of memory");
failed:
    tg_pool_destroy(pool);
    return NULL;
}


void
tg_cycle_free(tg_cycle_t *cycle)
{
    if (cycle) {
        /* tg_log_open() strdup()s the path: it lives outside the pool */
        free(cycle->error_log_file.path);
        cycle->error_log_file.path = NULL;
        tg_pool_destroy(cycle->pool);
    }
}


/*
 * Copies a configuration file to out as written, but for the values of
 * secret keys (TG_CONF_SECRET), which become "<redacted>". Lines are read
 * as the conf reader reads them: "[section ...]" headers, "key = value"
 * or "key: value"; a line longer than the buffer is copied as it is (the
 * reader refuses such lines, so no secret is read from one).
 */
static void
tg_cycle_dump_file(FILE *fp, FILE *out)
{
    int       known, whole;
    char      line[TG_CONF_LINE_MAX + 3], section[TG_CONF_LINE_MAX + 3];
    size_t    n, k, e;
    tg_str_t  sec, key;

    known = 0;
    whole = 1;
    sec.len = 0;
    sec.data = (u_char *) section;
    while (fgets(line, sizeof(line), fp) != NULL) {
        n = strlen(line);
        if (!whole) {
            /* the rest of a line too long to be read as configuration */
            whole = (n > 0 && line[n - 1] == '\n');
            fputs(line, out);
            continue;
        }
        whole = (n > 0 && line[n - 1] == '\n');
        for (k = 0; k < n && (line[k] == ' ' || line[k] == '\t'); k++) {
            /* leading space */
        }
        if (line[k] == '[') {
            e = strcspn(line + k + 1, "]\r\n");
            memcpy(section, line + k + 1, e);
            sec.len = e;
            known = 1;
        } else if (line[k] != ';' && line[k] != '#') {
            e = k + strcspn(line + k, "=:\r\n");
            if (line[e] == '=' || line[e] == ':') {
                key.data = (u_char *) line + k;
                key.len = e - k;
                tg_str_trim_ows(&key);
                if (key.len && tg_conf_secret(known ? &sec : NULL, &key)) {
                    fprintf(out, "%.*s <redacted>\n", (int) (e + 1), line);
                    continue;
                }
            }
        }
        fputs(line, out);
    }
}


void
tg_cycle_dump(tg_cycle_t *cycle, FILE *out)
{
    FILE                  *fp;
    size_t           i;
    tg_str_t        *files;
    tg_listen_t     *ls;
    tg_main_conf_t  *m;

    files = cycle->conf_files.elts;
    for (i = 0; i < cycle->conf_files.nelts; i++) {
        fprintf(out, "# configuration file " TG_STR_FMT ":\n",
                TG_STR_ARG(&files[i]));
        fp = fopen((char *) files[i].data, "r");
        if (fp) {
            tg_cycle_dump_file(fp, out);
            fclose(fp);
        }
        fputc('\n', out);
    }

    m = &cycle->main;
    fprintf(out, "# effective configuration:\n[main]\n");
    ls = m->listens.elts;
    for (i = 0; i < m->listens.nelts; i++) {
        if (ls[i].owner != NULL) {
            /* an admin page's own: its section prints it */
            continue;
        }
        fprintf(out, "listen = " TG_STR_FMT "%s backlog=%d\n",
                TG_STR_ARG(&ls[i].text), ls[i].ssl ? " ssl" : "",
                ls[i].backlog);
    }
    fprintf(out, "workers = %" PRId64 "%s\n", m->workers,
            m->workers == 0 ? " (auto)" : "");
    fprintf(out, "daemon = %s\n", m->daemon ? "on" : "off");
    fprintf(out, "pid = " TG_STR_FMT "\n", TG_STR_ARG(&m->pid));
    fprintf(out, "error_log = " TG_STR_FMT "\n", TG_STR_ARG(&m->error_log));
    fprintf(out, "worker_connections = %" PRId64 "\n", m->worker_connections);
    fprintf(out, "client_header_timeout = %" PRId64 "ms\n",
            m->client_header_timeout);
    fprintf(out, "client_body_timeout = %" PRId64 "ms\n",
            m->client_body_timeout);
    fprintf(out, "keepalive_timeout = %" PRId64 "ms\n", m->keepalive_timeout);
    fprintf(out, "keepalive_requests = %" PRId64 "\n", m->keepalive_requests);
    fprintf(out, "send_timeout = %" PRId64 "ms\n", m->send_timeout);
    fprintf(out, "client_max_body_size = %" PRId64 "\n",
            m->client_max_body_size);
    fprintf(out, "client_max_header_size = %" PRId64 "\n",
            m->client_max_header_size);
    fprintf(out, "client_max_headers = %" PRId64 "\n", m->client_max_headers);
    fprintf(out, "client_max_uri_size = %" PRId64 "\n",
            m->client_max_uri_size);
    fprintf(out, "proxy_buffer_size = %" PRId64 "\n", m->proxy_buffer_size);
    fprintf(out, "html = " TG_STR_FMT "\n", TG_STR_ARG(&m->html));
    fprintf(out, "health = %.*s\n", m->health.len ? (int) m->health.len : 3,
            m->health.len ? (char *) m->health.data : "off");
    fprintf(out, "shutdown_timeout = %" PRId64 "ms\n", m->shutdown_timeout);
    fprintf(out, "reject_ambiguous_paths = %s\n",
            m->reject_ambiguous_paths ? "on" : "off");

    fprintf(out, "\n[trace]\nservice_name = " TG_STR_FMT "\n",
            TG_STR_ARG(&cycle->trace.service_name));
    fprintf(out, "sampler = " TG_STR_FMT "\nsampler_arg = %g\n",
            TG_STR_ARG(&cycle->trace.sampler), cycle->trace.sampler_arg);
    fprintf(out, "propagators = " TG_STR_FMT "\n",
            TG_STR_ARG(&cycle->trace.propagators));
    fprintf(out, "x_trace_id = %.*s\n",
            cycle->trace.x_trace_id.len ? (int) cycle->trace.x_trace_id.len
                                        : 3,
            cycle->trace.x_trace_id.len ? (char *) cycle->trace.x_trace_id.data
                                        : "off");

    for (i = 0; tg_modules[i]; i++) {
        if (tg_modules[i]->dump_conf) {
            fputc('\n', out);
            tg_modules[i]->dump_conf(cycle, cycle->module_conf[i], out);
        }
    }
}
