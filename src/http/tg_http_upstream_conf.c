#include <tg_config.h>
#include <tg_core.h>
#include <tg_cycle.h>
#include <tg_http_upstream.h>
#include <tg_ssl.h>

#include <openssl/err.h>


static char *tg_upstream_set_server(tg_conf_t *cf, tg_command_t *cmd,
    void *conf);
static void *tg_upstream_create_conf(tg_cycle_t *cycle);
static void *tg_upstream_add_section(tg_conf_t *cf, void *conf,
    tg_str_t *name);
static int tg_upstream_module_init_conf(tg_cycle_t *cycle, void *conf);
static void tg_upstream_dump_conf(tg_cycle_t *cycle, void *conf, FILE *out);


static tg_command_t  tg_upstream_commands[] = {
    { tg_string("server"), TG_CONF_MULTI, tg_upstream_set_server, 0 },
    { tg_string("keepalive"), TG_CONF_TAKE1, tg_conf_set_num,
      offsetof(tg_upstream_t, keepalive) },
    { tg_string("keepalive_timeout"), TG_CONF_TAKE1, tg_conf_set_msec,
      offsetof(tg_upstream_t, keepalive_timeout) },
    { tg_string("keepalive_requests"), TG_CONF_TAKE1, tg_conf_set_num,
      offsetof(tg_upstream_t, keepalive_requests) },
    { tg_string("connect_timeout"), TG_CONF_TAKE1, tg_conf_set_msec,
      offsetof(tg_upstream_t, connect_timeout) },
    { tg_string("send_timeout"), TG_CONF_TAKE1, tg_conf_set_msec,
      offsetof(tg_upstream_t, send_timeout) },
    { tg_string("read_timeout"), TG_CONF_TAKE1, tg_conf_set_msec,
      offsetof(tg_upstream_t, read_timeout) },
    { tg_string("next_upstream_tries"), TG_CONF_TAKE1, tg_conf_set_num,
      offsetof(tg_upstream_t, next_upstream_tries) },
    { tg_string("host"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_upstream_t, host) },
    { tg_string("ssl_verify"), TG_CONF_TAKE1, tg_conf_set_flag,
      offsetof(tg_upstream_t, ssl_verify) },
    { tg_string("ssl_trusted_certificate"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_upstream_t, ssl_trusted_certificate) },
    { tg_string("ssl_server_name"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_upstream_t, ssl_server_name) },
    { tg_string("ssl_certificate"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_upstream_t, ssl_certificate) },
    { tg_string("ssl_certificate_key"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_upstream_t, ssl_certificate_key) },
    tg_null_command
};


/* [upstream NAME] */
tg_module_t  tg_upstream_module = {
    .section = tg_string("upstream"),
    .commands = tg_upstream_commands,
    .add_section = tg_upstream_add_section,
    .create_conf = tg_upstream_create_conf,
    .init_conf = tg_upstream_module_init_conf,
    .dump_conf = tg_upstream_dump_conf,
};


static void *
tg_upstream_create_conf(tg_cycle_t *cycle)
{
    tg_array_t  *a;

    a = tg_pcalloc(cycle->pool, sizeof(tg_array_t));
    if (a == NULL || tg_array_init(a, cycle->pool, 4, sizeof(void *)) != TG_OK)
    {
        return NULL;
    }
    return a;
}


static void *
tg_upstream_add_section(tg_conf_t *cf, void *conf, tg_str_t *name)
{
    size_t          i;
    tg_upstream_t  *u, **up;

    if (name->len == 0) {
        tg_conf_error(cf, "[upstream] needs a name: [upstream NAME]");
        return NULL;
    }
    for (i = 0; i < name->len; i++) {
        if (!isalnum(name->data[i]) && name->data[i] != '-'
            && name->data[i] != '_' && name->data[i] != '.')
        {
            tg_conf_error(cf, "upstream name \"" TG_STR_FMT "\" may hold only "
                              "letters, digits, '-', '_' and '.'",
                          TG_STR_ARG(name));
            return NULL;
        }
    }
    u = tg_upstream_find(cf->cycle, name);
    if (u != NULL) {
        tg_conf_error(cf, "duplicate upstream \"" TG_STR_FMT "\" (first at "
                          "%s:%d)", TG_STR_ARG(name), u->conf_file,
                      u->conf_line);
        return NULL;
    }
    u = tg_pcalloc(cf->pool, sizeof(tg_upstream_t));
    up = tg_array_push(conf);
    if (u == NULL || up == NULL
        || tg_pstrcopy(cf->pool, &u->name, name->data, name->len) != TG_OK
        || tg_array_init(&u->servers, cf->pool, 4,
                         sizeof(tg_upstream_server_t))
               != TG_OK)
    {
        tg_conf_error(cf, "out of memory");
        return NULL;
    }
    u->keepalive = TG_CONF_UNSET;
    u->keepalive_timeout = TG_CONF_UNSET;
    u->keepalive_requests = TG_CONF_UNSET;
    u->connect_timeout = TG_CONF_UNSET;
    u->send_timeout = TG_CONF_UNSET;
    u->read_timeout = TG_CONF_UNSET;
    u->next_upstream_tries = TG_CONF_UNSET;
    u->ssl_verify = TG_CONF_UNSET;
    u->conf_file = cf->file;
    u->conf_line = cf->line;
    *up = u;
    return u;
}


tg_upstream_t *
tg_upstream_find(tg_cycle_t *cycle, tg_str_t *name)
{
    size_t          i;
    tg_upstream_t **up;

    up = tg_upstreams(cycle)->elts;
    for (i = 0; i < tg_upstreams(cycle)->nelts; i++) {
        if (tg_str_eq(&up[i]->name, name)) {
            return up[i];
        }
    }
    return NULL;
}


/* server = HOST:PORT [weight=N] [max_fails=N] [fail_timeout=T] [backup] */
static char *
tg_upstream_set_server(tg_conf_t *cf, tg_command_t *cmd, void *conf)
{
    size_t                 i;
    int64_t                n;
    tg_str_t               rest, tok, v;
    tg_upstream_t         *u;
    tg_upstream_server_t  *s;

    u = conf;
    if (u->servers.nelts >= 64) {
        return "at most 64 servers per upstream; dropped";
    }
    s = tg_array_push(&u->servers);
    if (s == NULL) {
        return "out of memory for";
    }
    rest = cf->value;
    if (!tg_str_next_token(&rest, ' ', &tok) || tok.len == 0) {
        return "needs an address";
    }
    if (tok.len > 7 && memcmp(tok.data, "http://", 7) == 0) {
        tok.data += 7;
        tok.len -= 7;
    } else if (tok.len > 8 && memcmp(tok.data, "https://", 8) == 0) {
        tok.data += 8;
        tok.len -= 8;
        s->ssl = 1;
    }
    while (tok.len && tok.data[tok.len - 1] == '/') {
        tok.len--;
    }
    if (tg_pstrcopy(cf->pool, &s->text, tok.data, tok.len) != TG_OK) {
        return "out of memory for";
    }
    if (tg_parse_addr(cf->pool, &s->text, 0, &s->addr, &s->addrlen)
        != TG_OK)
    {
        return "cannot resolve (use HOST:PORT)";
    }
    /* host part for Host-less logs and the span's server.address */
    s->host = s->text;
    for (i = s->text.len; i > 0 && s->text.data[i - 1] != ':'; i--) {
        /* last ':' */
    }
    s->host.len = i ? i - 1 : s->text.len;
    if (s->host.len && s->host.data[0] == '[') {
        s->host.data++;
        s->host.len -= 2;
    }
    s->port = (int) (s->addr.ss_family == AF_INET6
                         ? ntohs(((struct sockaddr_in6 *) &s->addr)->sin6_port)
                         : ntohs(((struct sockaddr_in *) &s->addr)->sin_port));
    s->weight = 1;
    s->max_fails = 1;
    s->fail_timeout = 10000;
    s->upstream = u;

    while (tg_str_next_token(&rest, ' ', &tok)) {
        if (tok.len == 0) {
            continue;
        }
        if (tg_str_caseeq_c(&tok, "backup")) {
            s->backup = 1;
            continue;
        }
        v.data = memchr(tok.data, '=', tok.len);
        if (v.data == NULL) {
            return "unknown server option in";
        }
        v.data++;
        v.len = tok.len - (size_t) (v.data - tok.data);
        tok.len -= v.len + 1;
        if (tg_str_caseeq_c(&tok, "weight")) {
            if (tg_atoi(v.data, v.len, &n) != TG_OK || n < 1 || n > 1000) {
                return "weight must be 1..1000 in";
            }
            s->weight = n;
        } else if (tg_str_caseeq_c(&tok, "max_fails")) {
            if (tg_atoi(v.data, v.len, &n) != TG_OK) {
                return "invalid max_fails in";
            }
            s->max_fails = n;
        } else if (tg_str_caseeq_c(&tok, "fail_timeout")) {
            if (tg_parse_time_ms(&v, &n) != TG_OK) {
                return "invalid fail_timeout in";
            }
            s->fail_timeout = n;
        } else {
            return "unknown server option in";
        }
    }
    return TG_CONF_OK;
}


static int
tg_upstream_module_init_conf(tg_cycle_t *cycle, void *conf)
{
    size_t                 i, j;
    tg_array_t            *ups = conf;
    tg_upstream_t         *u, **up;
    tg_upstream_server_t  *srv;

    up = ups->elts;
    for (i = 0; i < ups->nelts; i++) {
        u = up[i];
        if (u->servers.nelts == 0) {
            snprintf(cycle->conf_error, sizeof(cycle->conf_error),
                     "%s:%d: upstream \"" TG_STR_FMT "\" has no \"server\"",
                     u->conf_file, u->conf_line, TG_STR_ARG(&u->name));
            return TG_ERROR;
        }
        tg_conf_default(u->keepalive, 32);
        tg_conf_default(u->keepalive_timeout, 60000);
        tg_conf_default(u->keepalive_requests, 10000);
        tg_conf_default(u->connect_timeout, 5000);
        tg_conf_default(u->send_timeout, 60000);
        tg_conf_default(u->read_timeout, 60000);
        tg_conf_default(u->next_upstream_tries, 0);
        tg_conf_default(u->ssl_verify, 1);
        srv = u->servers.elts;
        for (j = 0; j < u->servers.nelts; j++) {
            if (srv[j].ssl) {
                if (tg_upstream_ssl_ctx(cycle, u) != TG_OK) {
                    return TG_ERROR;
                }
                break;
            }
        }
    }
    return TG_OK;
}


static void
tg_upstream_dump_conf(tg_cycle_t *cycle, void *conf, FILE *out)
{
    size_t                  i, j;
    tg_array_t             *ups = conf;
    tg_upstream_t         **up;
    tg_upstream_server_t   *srv;

    up = ups->elts;
    for (i = 0; i < ups->nelts; i++) {
        fprintf(out, "%s[upstream " TG_STR_FMT "]\n", i ? "\n" : "",
                TG_STR_ARG(&up[i]->name));
        srv = up[i]->servers.elts;
        for (j = 0; j < up[i]->servers.nelts; j++) {
            fprintf(out, "server = " TG_STR_FMT " weight=%" PRId64
                    " max_fails=%" PRId64 " fail_timeout=%" PRId64 "ms%s\n",
                    TG_STR_ARG(&srv[j].text), srv[j].weight, srv[j].max_fails,
                    srv[j].fail_timeout, srv[j].backup ? " backup" : "");
        }
        fprintf(out, "keepalive = %" PRId64 "\nconnect_timeout = %" PRId64
                "ms\nread_timeout = %" PRId64 "ms\nsend_timeout = %" PRId64
                "ms\n", up[i]->keepalive, up[i]->connect_timeout,
                up[i]->read_timeout, up[i]->send_timeout);
    }
}


tg_upstream_server_t *
tg_upstream_next(tg_upstream_t *u, uint64_t *tried, uint64_t now_ms)
{
    int                    pass;
    size_t                 i;
    int64_t                total;
    tg_upstream_server_t  *s, *best;

    s = u->servers.elts;
    for (pass = 0; pass < 2; pass++) {
        /* smooth weighted round robin among primaries, then backups */
        best = NULL;
        total = 0;
        for (i = 0; i < u->servers.nelts; i++) {
            if ((unsigned) s[i].backup != (unsigned) pass
                || (*tried & (1ULL << i)) || s[i].down_until_ms > now_ms)
            {
                continue;
            }
            s[i].current_weight += s[i].weight;
            total += s[i].weight;
            if (best == NULL || s[i].current_weight > best->current_weight) {
                best = &s[i];
            }
        }
        if (best) {
            best->current_weight -= total;
            *tried |= 1ULL << tg_upstream_server_index(best);
            return best;
        }
    }
    return NULL;
}


void
tg_upstream_fail(tg_upstream_server_t *s, uint64_t now_ms)
{
    s->failures++;
    if (s->max_fails == 0 || s->upstream->servers.nelts == 1) {
        /* disabled, or the only server: marking it down helps nobody */
        return;
    }
    if (s->fails == 0 || now_ms - s->first_fail_ms > (uint64_t) s->fail_timeout)
    {
        s->fails = 0;
        s->first_fail_ms = now_ms;
    }
    if (++s->fails >= s->max_fails) {
        s->down_until_ms = now_ms + (uint64_t) s->fail_timeout;
        s->fails = 0;
        tg_log_error(TG_LOG_WARN, &tg_log_global, 0,
                     "upstream \"" TG_STR_FMT "\" server " TG_STR_FMT
                     " marked down for %" PRId64 "ms",
                     TG_STR_ARG(&s->upstream->name), TG_STR_ARG(&s->text),
                     s->fail_timeout);
    }
}


void
tg_upstream_success(tg_upstream_server_t *s)
{
    s->fails = 0;
}


int
tg_upstream_ssl_ctx(tg_cycle_t *cycle, tg_upstream_t *u)
{
    char     *path, *key;
    SSL_CTX  *ctx;

    ctx = tg_ssl_ctx_new(cycle, TLS_client_method());
    if (ctx == NULL) {
        return tg_ssl_error(cycle, u->conf_file, u->conf_line,
                            "SSL_CTX_new() failed%s", "");
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_alpn_protos(ctx, (const unsigned char *) "\x08http/1.1", 9);
    ERR_clear_error();
    if (u->ssl_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (u->ssl_trusted_certificate.len) {
            path = tg_conf_full_path(cycle->pool, cycle->prefix,
                                     &u->ssl_trusted_certificate);
            if (path == NULL
                || SSL_CTX_load_verify_locations(ctx, path, NULL) != 1)
            {
                return tg_ssl_error(cycle, u->conf_file, u->conf_line,
                                    "cannot load CA file \"%s\"",
                                    path ? path : "");
            }
        } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            return tg_ssl_error(cycle, u->conf_file, u->conf_line,
                                "cannot load the system CA store%s", "");
        }
    }
    if (u->ssl_certificate.len) {
        path = tg_conf_full_path(cycle->pool, cycle->prefix,
                                 &u->ssl_certificate);
        key = tg_conf_full_path(cycle->pool, cycle->prefix,
                                u->ssl_certificate_key.len
                                    ? &u->ssl_certificate_key
                                    : &u->ssl_certificate);
        if (path == NULL || key == NULL
            || SSL_CTX_use_certificate_chain_file(ctx, path) != 1
            || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1
            || SSL_CTX_check_private_key(ctx) != 1)
        {
            return tg_ssl_error(cycle, u->conf_file, u->conf_line,
                                "cannot load client certificate \"%s\"",
                                path ? path : "");
        }
    }
    u->ssl_ctx = ctx;
    return TG_OK;
}
