#include <tg_config.h>
#include <tg_core.h>
#include <tg_cycle.h>
#include <tg_ssl.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>


static char *tg_ssl_set_certificate(tg_conf_t *cf, tg_command_t *cmd,
    void *conf);
static char *tg_ssl_set_min_protocol(tg_conf_t *cf, tg_command_t *cmd,
    void *conf);
static int tg_ssl_servername_handler(SSL *ssl, int *ad, void *arg);
static void *tg_ssl_create_conf(tg_cycle_t *cycle);
static void *tg_ssl_add_section(tg_conf_t *cf, void *conf, tg_str_t *name);
static int tg_ssl_init_conf(tg_cycle_t *cycle, void *conf);
static int tg_ssl_alpn_handler(SSL *ssl, const unsigned char **out,
    unsigned char *outlen, const unsigned char *in, unsigned int inlen,
    void *arg);


static tg_command_t  tg_ssl_commands[] = {
    { tg_string("certificate"), TG_CONF_MULTI, tg_ssl_set_certificate, 0 },
    { tg_string("min_protocol"), TG_CONF_TAKE1, tg_ssl_set_min_protocol,
      offsetof(tg_ssl_conf_t, min_protocol) },
    { tg_string("session_timeout"), TG_CONF_TAKE1, tg_conf_set_msec,
      offsetof(tg_ssl_conf_t, session_timeout) },
    { tg_string("session_tickets"), TG_CONF_TAKE1, tg_conf_set_flag,
      offsetof(tg_ssl_conf_t, session_tickets) },
    tg_null_command
};


unsigned long
tg_ssl_error_text(struct bufferevent *bev, char *text, size_t len)
{
    unsigned long  e;

    if (bev == NULL) {
        e = ERR_get_error();
        ERR_clear_error();
    } else {
        e = bufferevent_get_openssl_error(bev);
        while (bufferevent_get_openssl_error(bev)) {
            /* drain */
        }
    }
    if (e == 0) {
        text[0] = '\0';
        return 0;
    }
    ERR_error_string_n(e, text, len);
    return e;
}


void
tg_ssl_log_errors(tg_log_t *log, int level, const char *what)
{
    char  text[256];

    if (tg_ssl_error_text(NULL, text, sizeof(text)) == 0) {
        tg_log_error(level, log, 0, "%s", what);
        return;
    }
    tg_log_error(level, log, 0, "%s: %s", what, text);
}


static void *
tg_ssl_create_conf(tg_cycle_t *cycle)
{
    tg_array_t  *a;

    a = tg_pcalloc(cycle->pool, sizeof(tg_array_t));
    if (a == NULL || tg_array_init(a, cycle->pool, 2, sizeof(void *)) != TG_OK)
    {
        return NULL;
    }
    return a;
}


static void *
tg_ssl_add_section(tg_conf_t *cf, void *conf, tg_str_t *name)
{
    size_t          i;
    tg_array_t     *confs = conf;
    tg_ssl_conf_t  *sc, **scp;

    scp = confs->elts;
    for (i = 0; i < confs->nelts; i++) {
        if (tg_str_eq(&scp[i]->name, name)) {
            tg_conf_error(cf, "section [ssl%s" TG_STR_FMT "] repeated",
                          name->len ? " " : "", TG_STR_ARG(name));
            return NULL;
        }
    }
    sc = tg_pcalloc(cf->pool, sizeof(tg_ssl_conf_t));
    scp = tg_array_push(confs);
    if (sc == NULL || scp == NULL
        || tg_pstrcopy(cf->pool, &sc->name, name->data, name->len) != TG_OK)
    {
        tg_conf_error(cf, "out of memory");
        return NULL;
    }
    sc->session_timeout = TG_CONF_UNSET;
    sc->session_tickets = TG_CONF_UNSET;
    sc->conf_file = cf->file;
    sc->conf_line = cf->line;
    *scp = sc;
    return sc;
}


/* min_protocol = TLSv1.2 | TLSv1.3, checked where it is written */
static char *
tg_ssl_set_min_protocol(tg_conf_t *cf, tg_command_t *cmd, void *conf)
{
    if (!tg_str_caseeq_c(&cf->value, "TLSv1.2")
        && !tg_str_caseeq_c(&cf->value, "TLSv1.3"))
    {
        return "must be TLSv1.2 or TLSv1.3, not";
    }
    return tg_conf_set_str(cf, cmd, conf);
}


/* certificate = CERT-FILE KEY-FILE (chain in CERT-FILE, PEM) */
static char *
tg_ssl_set_certificate(tg_conf_t *cf, tg_command_t *cmd, void *conf)
{
    char           *rv;
    tg_str_t        rest, cert, key;
    tg_keyval_t    *kv;
    tg_ssl_conf_t  *sc = conf;

    rest = cf->value;
    if (!tg_str_next_token(&rest, ' ', &cert) || cert.len == 0
        || !tg_str_next_token(&rest, ' ', &key) || key.len == 0 || rest.data)
    {
        return "expects \"CERTIFICATE-FILE KEY-FILE\", not";
    }
    rv = "out of memory for";
    if (sc->certificates == NULL) {
        sc->certificates = tg_array_create(cf->pool, 2, sizeof(tg_keyval_t));
        if (sc->certificates == NULL) {
            return rv;
        }
    }
    if (sc->certificates->nelts >= tg_nelts(sc->cert_lines)) {
        return "too many certificates; dropped";
    }
    sc->cert_lines[sc->certificates->nelts] = cf->line;
    kv = tg_array_push(sc->certificates);
    if (kv == NULL
        || tg_pstrcopy(cf->pool, &kv->key, cert.data, cert.len) != TG_OK
        || tg_pstrcopy(cf->pool, &kv->value, key.data, key.len) != TG_OK)
    {
        return rv;
    }
    return TG_CONF_OK;
}


static void
tg_ssl_ctx_cleanup(void *data)
{
    SSL_CTX_free(data);
}


int
tg_ssl_error(tg_cycle_t *cycle, const char *file, int line, const char *fmt,
    const char *arg)
{
    int   n;
    char  text[256];

    n = snprintf(cycle->conf_error, sizeof(cycle->conf_error), "%s:%d: ",
                 file, line);
    n += snprintf(cycle->conf_error + n, sizeof(cycle->conf_error) - n, fmt,
                  arg);
    if (tg_ssl_error_text(NULL, text, sizeof(text)) != 0
        && (size_t) n < sizeof(cycle->conf_error))
    {
        snprintf(cycle->conf_error + n, sizeof(cycle->conf_error) - n, " (%s)",
                 text);
    }
    return TG_ERROR;
}


SSL_CTX *
tg_ssl_ctx_new(tg_cycle_t *cycle, const SSL_METHOD *method)
{
    SSL_CTX            *ctx;
    tg_pool_cleanup_t  *cln;

    ctx = SSL_CTX_new(method);
    if (ctx == NULL) {
        return NULL;
    }
    cln = tg_pool_cleanup_add(cycle->pool);
    if (cln == NULL) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    cln->handler = tg_ssl_ctx_cleanup;
    cln->data = ctx;
    return ctx;
}


static int
tg_ssl_build_server(tg_cycle_t *cycle, tg_ssl_conf_t *sc)
{
    int           minv;
    char         *cert, *key;
    size_t        i;
    SSL_CTX      *ctx;
    tg_keyval_t  *kv;
    static const unsigned char  sid[] = "tracegate";

    if (sc->certificates == NULL || sc->certificates->nelts == 0) {
        return tg_ssl_error(cycle, sc->conf_file, sc->conf_line,
                            "[ssl%s] has no \"certificate\"",
                            sc->name.len ? " NAME" : "");
    }
    minv = TLS1_2_VERSION;
    if (sc->min_protocol.len) {
        if (tg_str_caseeq_c(&sc->min_protocol, "TLSv1.3")) {
            minv = TLS1_3_VERSION;
        } else if (!tg_str_caseeq_c(&sc->min_protocol, "TLSv1.2")) {
            return tg_ssl_error(cycle, sc->conf_file, sc->conf_line,
                                "min_protocol must be TLSv1.2 or TLSv1.3%s",
                                "");
        }
    }
    tg_conf_default(sc->session_timeout, 300000);
    tg_conf_default(sc->session_tickets, 1);
    sc->nctxs = sc->certificates->nelts;
    sc->ctxs = tg_pcalloc(cycle->pool, sc->nctxs * sizeof(SSL_CTX *));
    if (sc->ctxs == NULL) {
        return TG_ERROR;
    }
    kv = sc->certificates->elts;
    for (i = 0; i < sc->nctxs; i++) {
        ctx = tg_ssl_ctx_new(cycle, TLS_server_method());
        if (ctx == NULL) {
            return tg_ssl_error(cycle, sc->conf_file, sc->conf_line,
                                "SSL_CTX_new() failed%s", "");
        }
        sc->ctxs[i] = ctx;
        cert = tg_conf_full_path(cycle->pool, cycle->prefix, &kv[i].key);
        key = tg_conf_full_path(cycle->pool, cycle->prefix, &kv[i].value);
        if (cert == NULL || key == NULL) {
            return TG_ERROR;
        }
        ERR_clear_error();
        if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
            return tg_ssl_error(cycle, sc->conf_file, sc->cert_lines[i],
                                "cannot load certificate \"%s\"", cert);
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
            return tg_ssl_error(cycle, sc->conf_file, sc->cert_lines[i],
                                "cannot load key \"%s\"", key);
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            return tg_ssl_error(cycle, sc->conf_file, sc->cert_lines[i],
                                "key \"%s\" does not match its certificate",
                                key);
        }
        SSL_CTX_set_min_proto_version(ctx, minv);
        SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION
                                     | SSL_OP_CIPHER_SERVER_PREFERENCE);
        if (!sc->session_tickets) {
            SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        }
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
        SSL_CTX_set_timeout(ctx, (long) (sc->session_timeout / 1000));
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
        SSL_CTX_set_alpn_select_cb(ctx, tg_ssl_alpn_handler, NULL);
        SSL_CTX_set_tlsext_servername_callback(ctx, tg_ssl_servername_handler);
        SSL_CTX_set_tlsext_servername_arg(ctx, sc);
    }
    return TG_OK;
}


/* picks the certificate whose names cover the client's SNI */
static int
tg_ssl_servername_handler(SSL *ssl, int *ad, void *arg)
{
    size_t          i;
    X509           *x;
    const char     *name;
    tg_ssl_conf_t  *sc = arg;

    name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == NULL || sc->nctxs < 2) {
        return SSL_TLSEXT_ERR_OK;
    }
    for (i = 0; i < sc->nctxs; i++) {
        x = SSL_CTX_get0_certificate(sc->ctxs[i]);
        if (x && X509_check_host(x, name, 0, 0, NULL) == 1) {
            if (SSL_get_SSL_CTX(ssl) != sc->ctxs[i]) {
                SSL_set_SSL_CTX(ssl, sc->ctxs[i]);
            }
            break;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}


/* the only protocol spoken is HTTP/1.1 */
static int
tg_ssl_alpn_handler(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
    unsigned int  i;

    for (i = 0; i + 1 <= inlen; i += 1 + in[i]) {
        if (in[i] == 8 && i + 9 <= inlen && memcmp(in + i + 1, "http/1.1", 8) == 0)
        {
            *out = in + i + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}


static int
tg_ssl_init_conf(tg_cycle_t *cycle, void *conf)
{
    size_t           i, j;
    tg_listen_t     *ls;
    tg_ssl_conf_t  **scp, *sc;

    ls = cycle->main.listens.elts;
    scp = ((tg_array_t *) conf)->elts;
    for (i = 0; i < cycle->main.listens.nelts; i++) {
        if (!ls[i].ssl) {
            continue;
        }
        sc = NULL;
        for (j = 0; j < ((tg_array_t *) conf)->nelts; j++) {
            if (tg_str_eq(&scp[j]->name, &ls[i].ssl_name)) {
                sc = scp[j];
            }
        }
        if (sc == NULL) {
            snprintf(cycle->conf_error, sizeof(cycle->conf_error),
                     "%s:%d: listen " TG_STR_FMT " uses ssl but there is no "
                     "[ssl%s" TG_STR_FMT "] section", ls[i].conf_file,
                     ls[i].conf_line, TG_STR_ARG(&ls[i].text),
                     ls[i].ssl_name.len ? " " : "",
                     TG_STR_ARG(&ls[i].ssl_name));
            return TG_ERROR;
        }
        if (!sc->used) {
            sc->used = 1;
            if (tg_ssl_build_server(cycle, sc) != TG_OK) {
                return TG_ERROR;
            }
        }
        ls[i].ssl_ctx = sc->ctxs[0];
    }
    return TG_OK;
}


/*
 * [ssl] and [ssl NAME], a built-in module: its conf is the array of
 * tg_ssl_conf_t *; init_conf builds the server contexts of the sections
 * that listeners use (after [upstream]: the list order of src/config).
 */
tg_module_t  tg_ssl_module = {
    .section = tg_string("ssl"),
    .commands = tg_ssl_commands,
    .add_section = tg_ssl_add_section,
    .create_conf = tg_ssl_create_conf,
    .init_conf = tg_ssl_init_conf,
};
