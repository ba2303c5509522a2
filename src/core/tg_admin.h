#ifndef _TG_ADMIN_H_INCLUDED_
#define _TG_ADMIN_H_INCLUDED_

/*
 * What the admin pages ([status], [traces]) share beyond their allow lists
 * (tg_conf_set_allow and the others in tg_cycle.h): a listener of their
 * own, the DNS-rebinding check on Host, and the -t warning about a page
 * that other hosts can reach.
 */

#include <tg_cycle.h>

/*
 * "listen = ADDR:PORT" of an admin page: a plain-HTTP listener that serves
 * only that page; the [main] listeners then do not serve it.
 */
typedef struct {
    tg_str_t                 text;     /* as written; empty: none */
    struct sockaddr_storage  addr;
    socklen_t                addrlen;
    size_t                   index;    /* in main.listens, once added */
} tg_admin_listen_t;

/*
 * Command setter: offset points at a tg_admin_listen_t. One address, no
 * options (as in 127.0.0.1:9145, [::1]:9145 or 9145 for all addresses).
 */
char *tg_conf_set_admin_listen(tg_conf_t *cf, tg_command_t *cmd, void *conf);

/*
 * From init_conf (master, before fork): appends al, when set, to
 * cycle->main.listens with owner = section (a C string that outlives the
 * cycle), so that the master binds it with the others. TG_OK, else
 * TG_ERROR with cycle->conf_error set ("[section] listen ...") when
 * another listener, [main] or another page's, has the same address, or
 * out of memory. Does nothing for an empty al.
 */
int tg_admin_listen_add(tg_cycle_t *cycle, tg_admin_listen_t *al,
    const char *section);

/*
 * In a worker: the tg_listen_t that tg_admin_listen_add made for al (to
 * compare with r->c->listen), or NULL when al is empty.
 */
tg_listen_t *tg_admin_listen_get(tg_cycle_t *cycle, tg_admin_listen_t *al);

/*
 * Whether a request on the listener ls may see a page: TG_OK, 403 when the
 * client address peer is outside allow (the peer itself: X-Forwarded-For
 * is never consulted), 421 when ls is bound to a loopback address or the
 * client connects from one (a wildcard listener reached through 127.0.0.1)
 * and host (r->host: Host or the absolute-form authority) is not a
 * loopback name (tg_admin_host_loopback). A browser that a DNS-rebinding
 * page sends to 127.0.0.1 connects from loopback, so only the name it
 * sends in Host tells it from a local client. An empty host (HTTP/1.0 without Host) is
 * accepted: browsers always send one.
 */
int tg_admin_access(tg_listen_t *ls, struct sockaddr *peer,
    const tg_str_t *host, tg_array_t *allow);

/*
 * Whether host names the loopback: "localhost", "NAME.localhost" (RFC 6761
 * 6.3), an IPv4 literal in 127.0.0.0/8 or "[::1]" (any IPv6 spelling of
 * it, ::ffff:127.x too), each with an optional ":PORT"; names are
 * case-insensitive. Does not resolve anything.
 */
int tg_admin_host_loopback(const tg_str_t *host);

/* Whether sa is a loopback address: 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104. */
int tg_admin_addr_loopback(const struct sockaddr *sa);

/*
 * The -t and start-up warning (TG_LOG_WARN on tg_log_global, not an
 * error): logs one line naming section and what when the page can be
 * reached from other hosts, that is when its listener (al, else any
 * [main] listen) is not bound to loopback and allow admits addresses
 * outside loopback (tg_allow_open). Returns 1 when it warned.
 */
int tg_admin_warn_open(tg_cycle_t *cycle, tg_admin_listen_t *al,
    tg_array_t *allow, const char *section, const char *what);

#endif /* _TG_ADMIN_H_INCLUDED_ */
