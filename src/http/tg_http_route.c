#include <tg_config.h>
#include <tg_core.h>
#include <tg_cycle.h>
#include <tg_http_upstream.h>
#include <tg_http_route.h>


static void *tg_http_route_create_conf(tg_cycle_t *cycle);
static void *tg_http_route_add_section(tg_conf_t *cf, void *conf,
    tg_str_t *prefix);
static int tg_http_route_init_conf(tg_cycle_t *cycle, void *conf);
static void tg_http_route_dump_conf(tg_cycle_t *cycle, void *conf,
    FILE *out);


static tg_command_t  tg_http_route_commands[] = {
    { tg_string("upstream"), TG_CONF_TAKE1, tg_conf_set_str,
      offsetof(tg_http_route_t, upstream_name) },
    { tg_string("strip_prefix"), TG_CONF_TAKE1, tg_conf_set_flag,
      offsetof(tg_http_route_t, strip_prefix) },
    { tg_string("trust_incoming_context"), TG_CONF_TAKE1, tg_conf_set_flag,
      offsetof(tg_http_route_t, trust_incoming_context) },
    tg_null_command
};


/* [route PREFIX] */
tg_module_t  tg_http_route_module = {
    .section = tg_string("route"),
    .commands = tg_http_route_commands,
    .add_section = tg_http_route_add_section,
    .create_conf = tg_http_route_create_conf,
    .init_conf = tg_http_route_init_conf,
    .dump_conf = tg_http_route_dump_conf,
};


static void *
tg_http_route_create_conf(tg_cycle_t *cycle)
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
tg_http_route_add_section(tg_conf_t *cf, void *conf, tg_str_t *prefix)
{
    size_t            i;
    tg_str_t          p;
    tg_array_t       *routes = conf;
    tg_http_route_t  *rt, **rtp;

    if (prefix->len == 0) {
        tg_conf_error(cf, "[route] needs a path prefix: [route /PREFIX]");
        return NULL;
    }
    p = *prefix;
    if (p.len == 0 || p.data[0] != '/') {
        tg_conf_error(cf, "route prefix \"" TG_STR_FMT "\" must start with "
                          "'/'", TG_STR_ARG(prefix));
        return NULL;
    }
    for (i = 0; i < p.len; i++) {
        if (p.data[i] <= ' ' || p.data[i] == '?' || p.data[i] == '#'
            || p.data[i] >= 0x7f)
        {
            tg_conf_error(cf, "route prefix \"" TG_STR_FMT "\" has an "
                              "invalid character", TG_STR_ARG(prefix));
            return NULL;
        }
    }
    if (tg_pstrcopy(cf->pool, &p, prefix->data, prefix->len) != TG_OK) {
        tg_conf_error(cf, "out of memory");
        return NULL;
    }
    if (tg_http_path_normalize(&p) != TG_OK) {
        tg_conf_error(cf, "route prefix \"" TG_STR_FMT "\" climbs above the "
                          "root", TG_STR_ARG(prefix));
        return NULL;
    }
    while (p.len > 1 && p.data[p.len - 1] == '/') {
        p.len--;
    }

    rtp = routes->elts;
    for (i = 0; i < routes->nelts; i++) {
        if (tg_str_eq(&rtp[i]->prefix, &p)) {
            tg_conf_error(cf, "duplicate route \"" TG_STR_FMT "\" (first at "
                              "%s:%d)", TG_STR_ARG(&p), rtp[i]->conf_file,
                          rtp[i]->conf_line);
            return NULL;
        }
    }

    rt = tg_pcalloc(cf->pool, sizeof(tg_http_route_t));
    rtp = tg_array_push(routes);
    if (rt == NULL || rtp == NULL) {
        tg_conf_error(cf, "out of memory");
        return NULL;
    }
    rt->prefix = p;
    rt->strip_prefix = TG_CONF_UNSET;
    rt->trust_incoming_context = TG_CONF_UNSET;
    rt->conf_file = cf->file;
    rt->conf_line = cf->line;
    *rtp = rt;
    return rt;
}


static int
tg_http_route_cmp(const void *a, const void *b)
{
    const tg_http_route_t  *ra = *(tg_http_route_t *const *) a;
    const tg_http_route_t  *rb = *(tg_http_route_t *const *) b;

    if (ra->prefix.len != rb->prefix.len) {
        return ra->prefix.len > rb->prefix.len ? -1 : 1;
    }
    return memcmp(ra->prefix.data, rb->prefix.data, ra->prefix.len);
}


static int
tg_http_route_init_conf(tg_cycle_t *cycle, void *conf)
{
    size_t            i;
    tg_array_t       *routes = conf;
    tg_http_route_t  *rt, **rtp;

    rtp = routes->elts;
    for (i = 0; i < routes->nelts; i++) {
        rt = rtp[i];
        if (rt->upstream_name.len == 0) {
            snprintf(cycle->conf_error, sizeof(cycle->conf_error),
                     "%s:%d: route \"" TG_STR_FMT "\" has no \"upstream\"",
                     rt->conf_file, rt->conf_line, TG_STR_ARG(&rt->prefix));
            return TG_ERROR;
        }
        rt->upstream = tg_upstream_find(cycle, &rt->upstream_name);
        if (rt->upstream == NULL) {
            snprintf(cycle->conf_error, sizeof(cycle->conf_error),
                     "%s:%d: route \"" TG_STR_FMT "\" names unknown upstream "
                     "\"" TG_STR_FMT "\"", rt->conf_file, rt->conf_line,
                     TG_STR_ARG(&rt->prefix), TG_STR_ARG(&rt->upstream_name));
            return TG_ERROR;
        }
        rt->upstream->used = 1;
        tg_conf_default(rt->strip_prefix, 0);
        tg_conf_default(rt->trust_incoming_context, 1);
    }
    qsort(routes->elts, routes->nelts, sizeof(tg_http_route_t *),
          tg_http_route_cmp);
    return TG_OK;
}


static void
tg_http_route_dump_conf(tg_cycle_t *cycle, void *conf, FILE *out)
{
    size_t             i;
    tg_array_t        *routes = conf;
    tg_http_route_t  **rts;

    rts = routes->elts;
    for (i = 0; i < routes->nelts; i++) {
        fprintf(out, "%s[route " TG_STR_FMT "]\nupstream = " TG_STR_FMT
                "\nstrip_prefix = %s\n", i ? "\n" : "",
                TG_STR_ARG(&rts[i]->prefix),
                TG_STR_ARG(&rts[i]->upstream_name),
                rts[i]->strip_prefix ? "on" : "off");
    }
}


tg_http_route_t *
tg_http_route_find(tg_array_t *routes, const tg_str_t *path)
{
    size_t            i, n;
    tg_http_route_t  *rt, **rtp;

    rtp = routes->elts;
    for (i = 0; i < routes->nelts; i++) {
        rt = rtp[i];
        n = rt->prefix.len;
        if (n == 1) {
            return rt; /* "/" matches every origin-form path */
        }
        if (path->len >= n && memcmp(path->data, rt->prefix.data, n) == 0
            && (path->len == n || path->data[n] == '/'))
        {
            return rt;
        }
    }
    return NULL;
}


/* "." or ".." segment, also written with %2e (clients and upstreams decode) */
static int
tg_http_dot_segment(const u_char *p, size_t n)
{
    size_t  dots;

    dots = 0;
    while (n) {
        if (*p == '.') {
            p++;
            n--;
        } else if (n >= 3 && p[0] == '%' && p[1] == '2'
                   && (p[2] == 'e' || p[2] == 'E'))
        {
            p += 3;
            n -= 3;
        } else {
            return 0;
        }
        dots++;
    }
    return dots <= 2 ? (int) dots : 0;
}


int
tg_http_path_ambiguous(const tg_str_t *path)
{
    u_char        ch;
    const u_char *p, *end, *seg, *semi;

    p = path->data;
    end = path->data + path->len;
    seg = p;
    semi = NULL;
    for (; p <= end; p++) {
        ch = p < end ? *p : '/';
        if (ch == '\\') {
            return 1;
        }
        if (ch == '%' && end - p >= 3 && p[1] == '2'
            && (p[2] == 'f' || p[2] == 'F'))
        {
            return 1;
        }
        if (ch == '%' && end - p >= 3 && p[1] == '5'
            && (p[2] == 'c' || p[2] == 'C'))
        {
            return 1;
        }
        if (ch == ';' && semi == NULL) {
            semi = p;
        }
        if (ch == '/') {
            if (semi != NULL && semi > seg
                && tg_http_dot_segment((u_char *) seg, (size_t) (semi - seg)))
            {
                return 1; /* "..;x" or ".;x": a dot-segment to some */
            }
            seg = p + 1;
            semi = NULL;
        }
    }
    return 0;
}


int
tg_http_path_normalize(tg_str_t *path)
{
    u_char  *src, *end, *dst, *seg;
    size_t   n;
    int      dots;

    if (path->len == 0 || path->data[0] != '/') {
        return TG_ERROR;
    }
    src = path->data;
    end = path->data + path->len;
    dst = path->data; /* output never outgrows input */

    while (src < end) {
        /* src at a '/' */
        while (src + 1 < end && src[1] == '/') {
            src++;
        }
        seg = src + 1;
        for (n = 0; seg + n < end && seg[n] != '/'; n++) {
            /* segment length */
        }
        dots = tg_http_dot_segment(seg, n);
        if (n > 0 && dots == 1) {
            src = seg + n;
            if (src == end) {
                *dst++ = '/';
            }
            continue;
        }
        if (n > 0 && dots == 2) {
            if (dst == path->data) {
                return TG_ERROR; /* above the root */
            }
            while (dst > path->data && *--dst != '/') {
                /* drop the last output segment */
            }
            src = seg + n;
            if (src == end) {
                *dst++ = '/';
            }
            continue;
        }
        *dst++ = '/';
        memmove(dst, seg, n);
        dst += n;
        src = seg + n;
    }
    if (dst == path->data) {
        *dst++ = '/';
    }
    path->len = (size_t) (dst - path->data);
    return TG_OK;
}
