/*
 * bench/sink.c: a tiny, fast HTTP/1.1 server for the benchmark (loopback only).
 *
 * It plays two parts:
 *   - the OTLP/HTTP sink: POST /v1/traces is read whole, answered "200" with an
 *     empty application/x-protobuf body (a valid empty ExportTraceServiceResponse).
 *     It decodes nothing but the few protobuf tags needed to count the spans
 *     (resource_spans -> scope_spans -> spans -> kind), gunzipping the body first
 *     when Content-Encoding is gzip and zlib was available at build time;
 *   - the upstream of the streaming scenario: any other POST/PUT body is read and
 *     discarded (Content-Length or chunked), then answered 200 "ok";
 *     GET /download/N answers N zero bytes with a Content-Length.
 * GET /stats returns the counters as one JSON line; any other GET returns "ok".
 *
 * Build: cc -O2 -o sink bench/sink.c -DHAVE_ZLIB -lz     (or without zlib)
 * Usage: sink -p PORT [-a 127.0.0.1]
 *
 * Single thread, epoll, level-triggered, keep-alive, pipelining-safe.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef HAVE_ZLIB
#include <zlib.h>
#endif

#define IN_CAP    (256 * 1024)
#define HEAD_MAX  (32 * 1024)
#define BODY_MAX  (256u * 1024 * 1024)   /* largest trace export we keep to decode */

enum { S_HEAD, S_BODY_CL, S_CHUNK_SIZE, S_CHUNK_DATA, S_CHUNK_CRLF, S_TRAILER, S_SEND };

typedef struct conn {
    int       fd;
    int       state;
    char     *in;
    size_t    in_off, in_len;        /* unread bytes are in[in_off .. in_len) */
    uint64_t  remaining;             /* body bytes (CL) or chunk bytes left */
    int       keepalive, traces, gzip, is_post;
    char     *body;                  /* kept only for /v1/traces */
    size_t    blen, bcap;
    int       body_overflow;
    char      out[1024];
    size_t    olen, ooff;
    uint64_t  dl_remaining;          /* zero bytes still to send for /download */
    char      path[256];
} conn_t;

static struct {
    uint64_t connections, requests, bytes_in, trace_requests, trace_bytes, spans, server_spans,
             client_spans, internal_spans, other_spans, decode_errors, gzip_requests, bytes_out;
} st;

static int ep;
static char zeros[256 * 1024];

static void set_events(conn_t *c, uint32_t ev)
{
    struct epoll_event e = { .events = ev, .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void conn_close(conn_t *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c->body);
    free(c);
}

/* ---- minimal protobuf walking ------------------------------------------------ */

static int pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end) return -1;
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) { *v = r; return 0; }
    }
    return -1;
}

/* Calls fn(ctx, field, data, len) for each length-delimited field and
 * fnv(ctx, field, value) for varints; skips the rest. */
typedef int (*pb_len_fn)(void *ctx, uint32_t field, const uint8_t *d, size_t n);
typedef void (*pb_var_fn)(void *ctx, uint32_t field, uint64_t v);

static int pb_walk(const uint8_t *p, size_t n, pb_len_fn fl, pb_var_fn fv, void *ctx)
{
    const uint8_t *end = p + n;
    while (p < end) {
        uint64_t key, v;
        if (pb_varint(&p, end, &key)) return -1;
        uint32_t field = (uint32_t)(key >> 3);
        switch (key & 7) {
        case 0:
            if (pb_varint(&p, end, &v)) return -1;
            if (fv) fv(ctx, field, v);
            break;
        case 1:
            if (end - p < 8) return -1;
            p += 8;
            break;
        case 2:
            if (pb_varint(&p, end, &v) || v > (uint64_t)(end - p)) return -1;
            if (fl && fl(ctx, field, p, (size_t)v)) return -1;
            p += v;
            break;
        case 5:
            if (end - p < 4) return -1;
            p += 4;
            break;
        default:
            return -1;
        }
    }
    return 0;
}

typedef struct { uint64_t spans, server, client, internal, other; uint64_t kind; } span_count_t;

static void span_var(void *ctx, uint32_t field, uint64_t v)
{
    if (field == 6) ((span_count_t *)ctx)->kind = v;   /* Span.kind */
}

static int scope_spans_len(void *ctx, uint32_t field, const uint8_t *d, size_t n)
{
    span_count_t *sc = ctx;
    if (field != 2) return 0;                            /* ScopeSpans.spans */
    sc->kind = 0;
    if (pb_walk(d, n, NULL, span_var, sc)) return -1;
    sc->spans++;
    switch (sc->kind) {
    case 2: sc->server++; break;                          /* SPAN_KIND_SERVER */
    case 3: sc->client++; break;                          /* SPAN_KIND_CLIENT */
    case 1: sc->internal++; break;
    default: sc->other++; break;
    }
    return 0;
}

static int resource_spans_len(void *ctx, uint32_t field, const uint8_t *d, size_t n)
{
    if (field != 2) return 0;                            /* ResourceSpans.scope_spans */
    return pb_walk(d, n, scope_spans_len, NULL, ctx);
}

static int request_len(void *ctx, uint32_t field, const uint8_t *d, size_t n)
{
    if (field != 1) return 0;                            /* ExportTraceServiceRequest.resource_spans */
    return pb_walk(d, n, resource_spans_len, NULL, ctx);
}

static void count_spans(conn_t *c)
{
    const uint8_t *data = (const uint8_t *)c->body;
    size_t n = c->blen;
    uint8_t *plain = NULL;

    if (c->body_overflow) { st.decode_errors++; return; }
    if (c->gzip) {
        st.gzip_requests++;
#ifdef HAVE_ZLIB
        size_t cap = n * 8 + 4096, len = 0;
        z_stream z;
        memset(&z, 0, sizeof z);
        if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) { st.decode_errors++; return; }
        plain = malloc(cap);
        z.next_in = (Bytef *)data;
        z.avail_in = (uInt)n;
        for (;;) {
            if (len == cap) { cap *= 2; plain = realloc(plain, cap); }
            z.next_out = plain + len;
            z.avail_out = (uInt)(cap - len);
            int r = inflate(&z, Z_NO_FLUSH);
            len = cap - z.avail_out;
            if (r == Z_STREAM_END) break;
            if (r != Z_OK && r != Z_BUF_ERROR) { inflateEnd(&z); free(plain); st.decode_errors++; return; }
            if (r == Z_BUF_ERROR && z.avail_in == 0) { inflateEnd(&z); free(plain); st.decode_errors++; return; }
        }
        inflateEnd(&z);
        data = plain;
        n = len;
#else
        st.decode_errors++;
        return;
#endif
    }
    span_count_t sc = { 0 };
    if (pb_walk(data, n, request_len, NULL, &sc)) {
        st.decode_errors++;
    } else {
        st.spans += sc.spans;
        st.server_spans += sc.server;
        st.client_spans += sc.client;
        st.internal_spans += sc.internal;
        st.other_spans += sc.other;
    }
    free(plain);
}

/* ---- HTTP ------------------------------------------------------------------- */

static int flush_out(conn_t *c)
{
    while (c->ooff < c->olen) {
        ssize_t w = write(c->fd, c->out + c->ooff, c->olen - c->ooff);
        if (w < 0) return (errno == EAGAIN || errno == EINTR) ? 1 : -1;
        c->ooff += (size_t)w;
        st.bytes_out += (uint64_t)w;
    }
    c->olen = c->ooff = 0;
    while (c->dl_remaining) {
        size_t k = c->dl_remaining < sizeof zeros ? (size_t)c->dl_remaining : sizeof zeros;
        ssize_t w = write(c->fd, zeros, k);
        if (w < 0) return (errno == EAGAIN || errno == EINTR) ? 1 : -1;
        c->dl_remaining -= (uint64_t)w;
        st.bytes_out += (uint64_t)w;
    }
    return 0;
}

static void respond(conn_t *c, const char *ctype, const char *body, uint64_t dl)
{
    size_t blen = body ? strlen(body) : 0;
    c->olen = (size_t)snprintf(c->out, sizeof c->out,
                               "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %llu\r\n%s\r\n%s",
                               ctype, (unsigned long long)(dl ? dl : blen),
                               c->keepalive ? "" : "Connection: close\r\n", body ? body : "");
    c->ooff = 0;
    c->dl_remaining = dl;
    c->state = S_SEND;
}

static void finish_request(conn_t *c)
{
    st.requests++;
    if (c->traces) {
        st.trace_requests++;
        st.trace_bytes += c->blen;
        count_spans(c);
        c->blen = 0;
        c->body_overflow = 0;
        respond(c, "application/x-protobuf", "", 0);
        return;
    }
    if (c->is_post) { respond(c, "text/plain", "ok", 0); return; }
    if (strcmp(c->path, "/stats") == 0) {
        static char js[1024];
        snprintf(js, sizeof js,
                 "{\"connections\":%llu,\"requests\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,"
                 "\"trace_requests\":%llu,\"trace_bytes\":%llu,\"gzip_requests\":%llu,\"spans\":%llu,"
                 "\"server_spans\":%llu,\"client_spans\":%llu,\"internal_spans\":%llu,\"other_spans\":%llu,"
                 "\"decode_errors\":%llu,\"zlib\":%d}\n",
                 (unsigned long long)st.connections, (unsigned long long)st.requests,
                 (unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out,
                 (unsigned long long)st.trace_requests, (unsigned long long)st.trace_bytes,
                 (unsigned long long)st.gzip_requests, (unsigned long long)st.spans,
                 (unsigned long long)st.server_spans, (unsigned long long)st.client_spans,
                 (unsigned long long)st.internal_spans, (unsigned long long)st.other_spans,
                 (unsigned long long)st.decode_errors,
#ifdef HAVE_ZLIB
                 1
#else
                 0
#endif
        );
        respond(c, "application/json", js, 0);
        return;
    }
    if (strncmp(c->path, "/download/", 10) == 0) {
        uint64_t n = strtoull(c->path + 10, NULL, 10);
        if (n == 0) { respond(c, "text/plain", "", 0); return; }
        respond(c, "application/octet-stream", NULL, n);
        return;
    }
    respond(c, "text/plain", "ok", 0);
}

static void body_bytes(conn_t *c, const char *p, size_t n)
{
    st.bytes_in += n;
    if (!c->traces || c->body_overflow) return;
    if (c->blen + n > BODY_MAX) { c->body_overflow = 1; return; }
    if (c->blen + n > c->bcap) {
        size_t cap = c->bcap ? c->bcap : 65536;
        while (cap < c->blen + n) cap *= 2;
        c->body = realloc(c->body, cap);
        c->bcap = cap;
    }
    memcpy(c->body + c->blen, p, n);
    c->blen += n;
}

static const char *find_crlf(const char *p, size_t n)
{
    return memmem(p, n, "\r\n", 2);
}

/* Header value of NAME (case-insensitive) within the head block, or NULL. */
static int header_has(const char *head, size_t hlen, const char *name, const char *needle)
{
    size_t nl = strlen(name);
    const char *p = head, *end = head + hlen;
    while (p < end) {
        const char *e = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!e) e = end;
        if ((size_t)(e - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            size_t vl = (size_t)(e - v);
            if (!needle) return 1;
            size_t ndl = strlen(needle);
            for (size_t i = 0; i + ndl <= vl; i++)
                if (strncasecmp(v + i, needle, ndl) == 0) return 1;
        }
        p = e + 2;
    }
    return 0;
}

static uint64_t header_u64(const char *head, size_t hlen, const char *name, int *found)
{
    size_t nl = strlen(name);
    const char *p = head, *end = head + hlen;
    *found = 0;
    while (p < end) {
        const char *e = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!e) e = end;
        if ((size_t)(e - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            *found = 1;
            return strtoull(p + nl + 1, NULL, 10);
        }
        p = e + 2;
    }
    return 0;
}

/* Returns 0 to go on, 1 when more input is needed or a response is pending, -1 to close. */
static int parse_head(conn_t *c)
{
    char *p = c->in + c->in_off;
    size_t n = c->in_len - c->in_off;
    char *e = memmem(p, n, "\r\n\r\n", 4);
    if (!e) return n >= HEAD_MAX ? -1 : 1;
    size_t hlen = (size_t)(e - p) + 2;        /* keep the last header's CRLF */
    /* request line */
    char *sp1 = memchr(p, ' ', hlen);
    if (!sp1) return -1;
    char *sp2 = memchr(sp1 + 1, ' ', hlen - (size_t)(sp1 + 1 - p));
    if (!sp2) return -1;
    size_t pl = (size_t)(sp2 - sp1 - 1);
    if (pl >= sizeof c->path) pl = sizeof c->path - 1;
    memcpy(c->path, sp1 + 1, pl);
    c->path[pl] = 0;
    int http10 = memmem(sp2, 10, "HTTP/1.0", 8) != NULL;
    c->is_post = !(sp1 - p == 3 && memcmp(p, "GET", 3) == 0) && !(sp1 - p == 4 && memcmp(p, "HEAD", 4) == 0);
    c->traces = c->is_post && strncmp(c->path, "/v1/traces", 10) == 0;
    c->blen = 0;
    c->body_overflow = 0;

    const char *hdrs = memchr(p, '\n', hlen) + 1;
    size_t hl = hlen - (size_t)(hdrs - p);
    c->keepalive = http10 ? header_has(hdrs, hl, "Connection", "keep-alive")
                          : !header_has(hdrs, hl, "Connection", "close");
    c->gzip = header_has(hdrs, hl, "Content-Encoding", "gzip");
    int chunked = header_has(hdrs, hl, "Transfer-Encoding", "chunked");
    int have_cl;
    uint64_t cl = header_u64(hdrs, hl, "Content-Length", &have_cl);
    if (header_has(hdrs, hl, "Expect", "100-continue")) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (write(c->fd, cont, sizeof cont - 1) < 0) return -1;
    }
    c->in_off += hlen + 2;
    if (chunked) {
        c->state = S_CHUNK_SIZE;
    } else if (have_cl && cl > 0) {
        c->state = S_BODY_CL;
        c->remaining = cl;
    } else {
        finish_request(c);
    }
    return 0;
}

static int process(conn_t *c)
{
    for (;;) {
        char *p = c->in + c->in_off;
        size_t n = c->in_len - c->in_off;
        switch (c->state) {
        case S_SEND:
            return 1;
        case S_HEAD: {
            if (n == 0) return 1;
            int r = parse_head(c);
            if (r) return r;
            break;
        }
        case S_BODY_CL:
        case S_CHUNK_DATA: {
            if (n == 0) return 1;
            size_t k = n < c->remaining ? n : (size_t)c->remaining;
            body_bytes(c, p, k);
            c->in_off += k;
            c->remaining -= k;
            if (c->remaining == 0) {
                if (c->state == S_BODY_CL) finish_request(c);
                else c->state = S_CHUNK_CRLF;
            }
            break;
        }
        case S_CHUNK_SIZE: {
            const char *e = find_crlf(p, n);
            if (!e) return n > 1024 ? -1 : 1;
            char *endp;
            unsigned long long sz = strtoull(p, &endp, 16);
            if (endp == p) return -1;
            c->in_off += (size_t)(e - p) + 2;
            if (sz == 0) c->state = S_TRAILER;
            else { c->remaining = sz; c->state = S_CHUNK_DATA; }
            break;
        }
        case S_CHUNK_CRLF:
            if (n < 2) return 1;
            c->in_off += 2;
            c->state = S_CHUNK_SIZE;
            break;
        case S_TRAILER: {
            const char *e = find_crlf(p, n);
            if (!e) return n > HEAD_MAX ? -1 : 1;
            c->in_off += (size_t)(e - p) + 2;
            if (e == p) finish_request(c);
            break;
        }
        }
    }
}

static void on_conn(conn_t *c, uint32_t events)
{
    if (events & (EPOLLERR)) { conn_close(c); return; }
    if (c->state == S_SEND) {
        int r = flush_out(c);
        if (r < 0) { conn_close(c); return; }
        if (r > 0) { set_events(c, EPOLLOUT); return; }
        if (!c->keepalive) { conn_close(c); return; }
        c->state = S_HEAD;
        set_events(c, EPOLLIN);
        /* fall through to parse pipelined input already buffered */
    } else if (events & (EPOLLIN | EPOLLHUP)) {
        if (c->in_off == c->in_len) c->in_off = c->in_len = 0;
        else if (c->in_len == IN_CAP) {
            memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
            c->in_len -= c->in_off;
            c->in_off = 0;
        }
        ssize_t r = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
        if (r == 0) { conn_close(c); return; }
        if (r < 0) { if (errno != EAGAIN && errno != EINTR) conn_close(c); return; }
        c->in_len += (size_t)r;
    }
    for (;;) {
        int r = process(c);
        if (r < 0) { conn_close(c); return; }
        if (c->state != S_SEND) return;
        int w = flush_out(c);
        if (w < 0) { conn_close(c); return; }
        if (w > 0) { set_events(c, EPOLLOUT); return; }
        if (!c->keepalive) { conn_close(c); return; }
        c->state = S_HEAD;
    }
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1";
    int port = 0, opt;
    while ((opt = getopt(argc, argv, "p:a:")) != -1) {
        if (opt == 'p') port = atoi(optarg);
        else if (opt == 'a') addr = optarg;
        else { fprintf(stderr, "usage: %s -p PORT [-a ADDR]\n", argv[0]); return 2; }
    }
    if (port <= 0) { fprintf(stderr, "usage: %s -p PORT [-a ADDR]\n", argv[0]); return 2; }
    signal(SIGPIPE, SIG_IGN);

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) { fprintf(stderr, "sink: bad address %s\n", addr); return 2; }
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 4096)) {
        fprintf(stderr, "sink: cannot listen on %s:%d: %s\n", addr, port, strerror(errno));
        return 1;
    }
    ep = epoll_create1(0);
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &e);

    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) { if (errno == EINTR) continue; perror("epoll_wait"); return 1; }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                for (;;) {
                    int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                    if (fd < 0) break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn_t *c = calloc(1, sizeof *c);
                    c->fd = fd;
                    c->in = malloc(IN_CAP);
                    c->state = S_HEAD;
                    st.connections++;
                    struct epoll_event ce = { .events = EPOLLIN, .data.ptr = c };
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                }
                continue;
            }
            on_conn(evs[i].data.ptr, evs[i].events);
        }
    }
}
