#include <tg_config.h>
#include <tg_core.h>
#include <tg_admin.h>
#include "tap.h"


/*
 * The admin pages' checks: which Host values name the loopback, which
 * listener addresses are loopback, and tg_admin_access's answers (allow
 * first, then the Host on a loopback listener only).
 */


static int
test_host(const char *host)
{
    tg_str_t  h;

    h.data = (u_char *) host;
    h.len = strlen(host);
    return tg_admin_host_loopback(&h);
}


static void
test_listen(tg_pool_t *pool, tg_listen_t *ls, const char *text)
{
    tg_str_t  t;

    memset(ls, 0, sizeof(tg_listen_t));
    t.data = (u_char *) text;
    t.len = strlen(text);
    if (tg_parse_addr(pool, &t, 1, &ls->addr, &ls->addrlen) != TG_OK) {
        ok(0, "address %s parsed", text);
    }
}


static tg_array_t *
tg_test_allow_all(tg_pool_t *pool)
{
    tg_array_t  *a;
    tg_cidr_t   *c;

    a = tg_array_create(pool, 1, sizeof(tg_cidr_t));
    c = tg_array_push(a);
    memset(c, 0, sizeof(tg_cidr_t));
    c->family = AF_INET;
    return a;
}


int
main(void)
{
    size_t                i;
    tg_str_t              h;
    tg_pool_t            *pool;
    tg_listen_t           lo, lo6, any, ext;
    tg_array_t           *allow;
    struct sockaddr_in    peer;
    struct sockaddr_in6   peer6;

    static const char  *yes[] = {
        "localhost", "localhost:8080", "LOCALHOST:1", "LocalHost",
        "a.localhost", "viewer.localhost:9000", "a.b-c.LOCALHOST",
        "127.0.0.1", "127.0.0.1:8080", "127.255.255.254:65535", "127.1.2.3",
        "[::1]", "[::1]:8080", "[0:0:0:0:0:0:0:1]:80", "[::ffff:127.0.0.1]",
        "[::FFFF:127.9.9.9]:1"
    };
    static const char  *no[] = {
        "", "evil.example", "evil.example:8080", "localhost.evil.example",
        "localhost.", "localhostx", "xlocalhost", ".localhost", "-.local",
        "127.0.0.1.evil.example", "127.0.0.1.nip.io", "127.1", "0x7f.1",
        "2130706433", "128.0.0.1", "10.0.0.1", "0.0.0.0", "[::]", "[::2]",
        "[::1", "[::1]x", "[::1]:", "[::1]:123456", "localhost:",
        "localhost:80:80", "localhost:8o", "[127.0.0.1]", "[::ffff:10.0.0.1]",
        "a_b.localhost", "a..b:localhost"
    };

    for (i = 0; i < tg_nelts(yes); i++) {
        ok(test_host(yes[i]), "Host \"%s\" is loopback", yes[i]);
    }
    for (i = 0; i < tg_nelts(no); i++) {
        ok(!test_host(no[i]), "Host \"%s\" is not loopback", no[i]);
    }

    pool = tg_pool_create(4096);
    ok(pool != NULL, "pool");
    if (pool == NULL) {
        return done_testing();
    }
    test_listen(pool, &lo, "127.0.0.1:8080");
    test_listen(pool, &lo6, "[::1]:8080");
    test_listen(pool, &any, "8080");
    test_listen(pool, &ext, "192.0.2.1:8080");
    ok(tg_admin_addr_loopback((struct sockaddr *) &lo.addr),
       "127.0.0.1 is a loopback listener");
    ok(tg_admin_addr_loopback((struct sockaddr *) &lo6.addr),
       "[::1] is a loopback listener");
    ok(!tg_admin_addr_loopback((struct sockaddr *) &any.addr),
       "0.0.0.0 is not");
    ok(!tg_admin_addr_loopback((struct sockaddr *) &ext.addr),
       "192.0.2.1 is not");

    allow = NULL;
    ok(tg_allow_default(pool, &allow) == TG_OK, "default allow list");
    memset(&peer, 0, sizeof(peer));
    peer.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &peer.sin_addr);
    memset(&peer6, 0, sizeof(peer6));
    peer6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::1", &peer6.sin6_addr);

    tg_str_set(&h, "localhost:8080");
    is_int(tg_admin_access(&lo, (struct sockaddr *) &peer, &h, allow), TG_OK,
           "127.0.0.1, Host localhost: allowed");
    is_int(tg_admin_access(&lo6, (struct sockaddr *) &peer6, &h, allow),
           TG_OK, "::1, Host localhost: allowed");
    tg_str_set(&h, "evil.example");
    is_int(tg_admin_access(&lo, (struct sockaddr *) &peer, &h, allow), 421,
           "Host evil.example on a loopback listener: 421");
    is_int(tg_admin_access(&lo6, (struct sockaddr *) &peer6, &h, allow), 421,
           "... on [::1] too");
    is_int(tg_admin_access(&any, (struct sockaddr *) &peer, &h, allow), 421,
           "... and on 0.0.0.0 reached from 127.0.0.1 (a local browser)");
    {
        struct sockaddr_in  far;

        memset(&far, 0, sizeof(far));
        far.sin_family = AF_INET;
        inet_pton(AF_INET, "192.0.2.9", &far.sin_addr);
        is_int(tg_admin_access(&any, (struct sockaddr *) &far, &h,
                               tg_test_allow_all(pool)),
               TG_OK, "... not on 0.0.0.0 for a remote client (its names "
                      "are unknown; allow decides)");
    }
    tg_str_set(&h, "");
    is_int(tg_admin_access(&lo, (struct sockaddr *) &peer, &h, allow), TG_OK,
           "no Host (HTTP/1.0): allowed");
    inet_pton(AF_INET, "192.0.2.7", &peer.sin_addr);
    tg_str_set(&h, "localhost");
    is_int(tg_admin_access(&any, (struct sockaddr *) &peer, &h, allow), 403,
           "client outside allow: 403");
    tg_str_set(&h, "evil.example");
    is_int(tg_admin_access(&lo, (struct sockaddr *) &peer, &h, allow), 403,
           "outside allow and a bad Host: 403 first");

    tg_pool_destroy(pool);
    return done_testing();
}
