#include <tg_config.h>
#include <tg_core.h>
#include <tg_admin.h>


char *
tg_conf_set_admin_listen(tg_conf_t *cf, tg_command_t *cmd, void *conf)
{
    tg_str_t            text, section;
    tg_admin_listen_t  *al;

    al = (tg_admin_listen_t *) ((u_char *) conf + cmd->offset);
    if (cf->module != NULL) {
        section = cf->module->section;
    } else {
        tg_str_set(&section, "admin");
    }
    text = cf->value;
    tg_str_trim_ows(&text);
    if (text.len == 0 || memchr(text.data, ' ', text.len) != NULL) {
        tg_conf_error(cf, "listen: one address, as in 127.0.0.1:9145 "
                      "(no options: the " TG_STR_FMT " listener is plain "
                      "HTTP)", TG_STR_ARG(&section));
        return "invalid value";
    }
    if (tg_pstrcopy(cf->pool, &al->text, text.data, text.len) != TG_OK) {
        return "out of memory for";
    }
    if (tg_parse_addr(cf->pool, &al->text, 1, &al->addr, &al->addrlen)
        != TG_OK)
    {
        tg_conf_error(cf, "listen: invalid address \"" TG_STR_FMT "\" (use "
                      "127.0.0.1:9145, [::1]:9145 or 9145)",
                      TG_STR_ARG(&al->text));
        return "invalid value";
    }
    return TG_CONF_OK;
}


int
tg_admin_listen_add(tg_cycle_t *cycle, tg_admin_listen_t *al,
    const char *section)
{
    size_t        i;
    tg_listen_t  *ls;

    if (al->text.len == 0) {
        return TG_OK;
    }
    ls = cycle->main.listens.elts;
    for (i = 0; i < cycle->main.listens.nelts; i++) {
        if (ls[i].addrlen != al->addrlen
            || memcmp(&ls[i].addr, &al->addr, ls[i].addrlen) != 0)
        {
            continue;
        }
        if (ls[i].owner == NULL) {
            snprintf(cycle->conf_error, TG_CONF_ERRLEN, "[%s] listen "
                     TG_STR_FMT " is also a [main] listen address; the %s "
                     "listener needs one of its own", section,
                     TG_STR_ARG(&al->text), section);
        } else {
            snprintf(cycle->conf_error, TG_CONF_ERRLEN, "[%s] listen "
                     TG_STR_FMT " is also the [%s] listen address; the %s "
                     "listener needs one of its own", section,
                     TG_STR_ARG(&al->text), ls[i].owner, section);
        }
        return TG_ERROR;
    }
    /* the master binds it with the others, one socket per worker */
    al->index = cycle->main.listens.nelts;
    ls = tg_array_push(&cycle->main.listens);
    if (ls == NULL) {
        return TG_ERROR;
    }
    ls->text = al->text;
    memcpy(&ls->addr, &al->addr, al->addrlen);
    ls->addrlen = al->addrlen;
    ls->backlog = 128;
    ls->owner = section;
    return TG_OK;
}


tg_listen_t *
tg_admin_listen_get(tg_cycle_t *cycle, tg_admin_listen_t *al)
{
    tg_listen_t  *ls;

    if (al->text.len == 0 || al->index >= cycle->main.listens.nelts) {
        return NULL;
    }
    ls = cycle->main.listens.elts;
    return &ls[al->index];
}


int
tg_admin_access(tg_listen_t *ls, struct sockaddr *peer,
    const tg_str_t *host, tg_array_t *allow)
{
    if (!tg_cidr_match(allow, peer)) {
        return 403;
    }
    if (host->len != 0
        && (tg_admin_addr_loopback(peer)
            || tg_admin_addr_loopback((struct sockaddr *) &ls->addr))
        && !tg_admin_host_loopback(host))
    {
        return 421;
    }
    return TG_OK;
}


int
tg_admin_addr_loopback(const struct sockaddr *sa)
{
    const struct sockaddr_in   *sin;
    const struct sockaddr_in6  *sin6;

    if (sa->sa_family == AF_INET) {
        sin = (const struct sockaddr_in *) sa;
        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        sin6 = (const struct sockaddr_in6 *) sa;
        return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)
               || (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)
                   && sin6->sin6_addr.s6_addr[12] == 127);
    }
    return 0;
}


int
tg_admin_host_loopback(const tg_str_t *host)
{
    char             text[INET6_ADDRSTRLEN + 1];
    size_t           i;
    u_char          *p, *end, *rest, *close;
    tg_str_t         name;
    struct in_addr   a4;
    struct in6_addr  a6;

    p = host->data;
    end = host->data + host->len;
    if (host->len == 0) {
        return 0;
    }
    if (p[0] == '[') {
        close = memchr(p, ']', host->len);
        if (close == NULL) {
            return 0;
        }
        name.data = p + 1;
        name.len = (size_t) (close - p - 1);
        rest = close + 1;
    } else {
        /* a name or an IPv4 literal: the first ':' starts the port */
        rest = memchr(p, ':', host->len);
        if (rest == NULL) {
            rest = end;
        }
        name.data = p;
        name.len = (size_t) (rest - p);
    }
    if (rest != end) {
        /* RFC 3986 3.2.3, at most 5 digits */
        if (rest[0] != ':' || end - rest < 2 || end - rest > 6) {
            return 0;
        }
        for (rest++; rest < end; rest++) {
            if (*rest < '0' || *rest > '9') {
                return 0;
            }
        }
    }
    if (name.len == 0) {
        return 0;
    }

    if (p[0] == '[') {
        if (name.len >= sizeof(text)) {
            return 0;
        }
        memcpy(text, name.data, name.len);
        text[name.len] = '\0';
        if (inet_pton(AF_INET6, text, &a6) != 1) {
            return 0;
        }
        return IN6_IS_ADDR_LOOPBACK(&a6)
               || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    }

    if (tg_str_caseeq_c(&name, "localhost")) {
        return 1;
    }
    if (name.len > sizeof(".localhost") - 1
        && tg_str_caseeq_n(name.data + name.len - (sizeof(".localhost") - 1),
                           (const u_char *) ".localhost",
                           sizeof(".localhost") - 1))
    {
        /* RFC 6761 6.3: every name under localhost is the loopback */
        if (name.data[0] == '.') {
            return 0;
        }
        for (i = 0; i < name.len; i++) {
            if (!isalnum(name.data[i]) && name.data[i] != '-'
                && name.data[i] != '.')
            {
                return 0;
            }
        }
        return 1;
    }

    if (name.len >= sizeof(text)) {
        return 0;
    }
    memcpy(text, name.data, name.len);
    text[name.len] = '\0';
    if (inet_pton(AF_INET, text, &a4) != 1) {
        return 0;
    }
    return (ntohl(a4.s_addr) >> 24) == 127;
}


int
tg_admin_warn_open(tg_cycle_t *cycle, tg_admin_listen_t *al,
    tg_array_t *allow, const char *section, const char *what)
{
    size_t        i;
    tg_str_t     *text;
    tg_listen_t  *ls;

    if (!tg_allow_open(allow)) {
        return 0;
    }
    text = NULL;
    if (al->text.len != 0) {
        if (!tg_admin_addr_loopback((struct sockaddr *) &al->addr)) {
            text = &al->text;
        }
    } else {
        ls = cycle->main.listens.elts;
        for (i = 0; i < cycle->main.listens.nelts; i++) {
            if (ls[i].owner == NULL
                && !tg_admin_addr_loopback((struct sockaddr *) &ls[i].addr))
            {
                text = &ls[i].text;
                break;
            }
        }
    }
    if (text == NULL) {
        return 0;
    }
    tg_log_error(TG_LOG_WARN, &tg_log_global, 0,
                 "[%s] %s can be reached from other hosts: listen "
                 TG_STR_FMT " is not a loopback address and allow admits "
                 "clients outside loopback", section, what,
                 TG_STR_ARG(text));
    return 1;
}
