#include <tg_config.h>
#include <tg_core.h>
#include <tg_http.h>
#include <tap.h>
#include "tg_test_http.h"

/*
 * The llhttp settings of tg_http_parse.c on a fake connection: the framing
 * and header rules that llhttp 8.1 leaves to us. Each case here was found
 * by fuzz/fuzz_request.c, fuzz/fuzz_response.c or t/57-smuggling.t.
 */

static tg_cycle_t  test_cycle;


/* Feeds a whole request; returns the llhttp error and fills *status. */
static int
test_request(const char *raw, int *status, tg_http_request_t **out)
{
    int                 err;
    size_t              n;
    const char         *body;
    tg_http_conn_t     *c;
    tg_http_request_t  *r;
    static tg_pool_t   *last;

    if (last) {
        tg_pool_destroy(last);
    }
    last = tg_pool_create(4096);
    r = tg_test_http_request(last);
    c = r->c;
    llhttp_init(&c->parser, HTTP_REQUEST, &tg_http_request_settings);
    c->parser.data = c;
    err = llhttp_execute(&c->parser, raw, strlen(raw));
    if (err == HPE_PAUSED && !r->body_done) {
        /* at the end of the head: the body follows, checked as
           tg_http_process_input checks what it relays */
        body = llhttp_get_error_pos(&c->parser);
        llhttp_resume(&c->parser);
        err = llhttp_execute(&c->parser, body, strlen(body));
        n = err == HPE_PAUSED ? (size_t) (llhttp_get_error_pos(&c->parser)
                                          - body)
                              : strlen(body);
        if ((err == HPE_OK || err == HPE_PAUSED) && r->chunked
            && tg_http_chunked_check(&r->chunk_check, (const u_char *) body,
                                     n)
                   != (r->body_done ? TG_DONE : TG_OK))
        {
            err = HPE_INVALID_CHUNK_SIZE;
        }
    }
    *status = err == HPE_OK || err == HPE_PAUSED
                  ? 0
                  : (r->err_status ? r->err_status : 400);
    if (out) {
        *out = r;
    }
    return err;
}


/* Feeds a whole response; returns 1 when it was accepted. */
static int
test_response(const char *raw, tg_http_request_t **out)
{
    int                 err;
    tg_http_request_t  *r;
    static tg_pool_t   *last;

    if (last) {
        tg_pool_destroy(last);
    }
    last = tg_pool_create(4096);
    r = tg_test_http_request(last);
    llhttp_init(&r->upstream.parser, HTTP_RESPONSE, &tg_http_response_settings);
    r->upstream.parser.data = r;
    err = llhttp_execute(&r->upstream.parser, raw, strlen(raw));
    if (err == HPE_PAUSED && !r->upstream.done) {
        llhttp_resume(&r->upstream.parser);
        err = llhttp_execute(&r->upstream.parser, llhttp_get_error_pos(&r->upstream.parser),
                             strlen(llhttp_get_error_pos(&r->upstream.parser)));
    }
    if (out) {
        *out = r;
    }
    return err == HPE_OK || err == HPE_PAUSED;
}


int
main(void)
{
    int                 st;
    tg_http_request_t  *r;

    test_cycle.main.client_max_uri_size = 8192;
    test_cycle.main.client_max_header_size = 16384;
    test_cycle.main.client_max_headers = 100;
    test_cycle.main.client_max_body_size = 1024 * 1024;
    tg_cycle = &test_cycle;

    /* Transfer-Encoding: only one line of exactly "chunked" */
    test_request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked"
                 "\r\n\r\n5\r\nhello\r\n0\r\n\r\n", &st, &r);
    is_int(st, 0, "chunked request accepted");
    ok(r->chunked, "chunked request accepted");
    ok(r->body_done, "chunked request accepted");
    test_request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED"
                 "\r\n\r\n0\r\n\r\n", &st, &r);
    is_int(st, 0, "chunked in capitals accepted");
    ok(r->chunked, "chunked in capitals accepted");
    test_request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked"
                 "\r\n\r\n5\r\nhello\r\n0\r\n\r\n", &st, NULL);
    is_int(st, 501, "fuzz_request crash 1: \",chunked\" is 501, not relayed");
    test_request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, "
                 "chunked\r\n\r\n0\r\n\r\n", &st, NULL);
    is_int(st, 501, "\"gzip, chunked\" is 501");
    test_request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: x\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", &st, NULL);
    is_int(st, 400, "fuzz_request crash 2: two Transfer-Encoding lines");
    test_request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked"
                 "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", &st,
                 NULL);
    is_int(st, 400, "chunked twice is 400");
    test_request("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "0\r\n\r\n", &st, NULL);
    is_int(st, 400, "HTTP/1.0 with Transfer-Encoding is 400");

    /* header names are tokens */
    test_request("GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", &st, NULL);
    is_int(st, 400, "empty header name is 400");
    test_request("GET / HTTP/1.1\r\nHost: a\r\nX Forwarded: 1\r\n\r\n", &st,
                 NULL);
    is_int(st, 400, "t/57 case: a space inside a header name is 400");
    test_request("GET / HTTP/1.1\r\nHost: a\r\nX-Ok_1.~!: 1\r\n\r\n", &st,
                 &r);
    is_int(st, 0, "every tchar accepted in a name");
    is_int(r->headers.nelts, 2, "every tchar accepted in a name");
    {
        int         b, bad;
        char        req[64];
        const char *tchar = "!#$%&'*+-.^_`|~";

        /* each visible byte inside a name: accepted exactly when tchar */
        bad = 0;
        for (b = 0x21; b < 0x7f; b++) {
            if (b == ':') {
                continue;
            }
            snprintf(req, sizeof(req),
                     "GET / HTTP/1.1\r\nHost: a\r\nX%cY: 1\r\n\r\n", b);
            test_request(req, &st, NULL);
            if ((st == 0) != (isalnum(b) || strchr(tchar, b) != NULL)) {
                printf("# byte 0x%02x: status %d\n", b, st);
                bad++;
            }
        }
        ok(bad == 0, "a name byte is accepted exactly when it is a tchar");
    }

    /* chunk sizes are checked before their data */
    test_request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked"
                 "\r\n\r\n200000\r\nx", &st, NULL);
    is_int(st, 413, "a chunk larger than the body limit is 413 at once");
    test_cycle.main.client_max_body_size = 0;
    test_request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked"
                 "\r\n\r\n8000000000000000\r\nx", &st, NULL);
    is_int(st, 400, "a chunk size of 2^63 is 400 even without a limit");
    test_request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked"
                 "\r\n\r\n7fffffffffffffff\r\nx", &st, NULL);
    is_int(st, 0, "2^63 - 1 passes without a limit (streamed)");
    test_cycle.main.client_max_body_size = 1024 * 1024;

    /*
     * Strict framing (llhttp built with LLHTTP_STRICT_MODE): without it,
     * llhttp 8.1 skips the CRLF after chunk data and after the last
     * chunk, and takes a tab inside the request-target, and a server
     * that reads bare LF as a line end then sees other requests.
     */
    test_request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked"
                 "\r\n\r\n1\r\nA\n60\r\n\r\n", &st, NULL);
    is_int(st, 400, "strict: chunk data followed by a bare LF is 400");
    test_request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked"
                 "\r\n\r\n1\r\nAxx0\r\n\r\n", &st, NULL);
    is_int(st, 400, "strict: chunk data not followed by CRLF is 400");
    test_request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked"
                 "\r\n\r\n1\r\nA\r\n0\r\n\n", &st, NULL);
    is_int(st, 400, "strict: last chunk ended by a bare LF is 400");
    test_request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked"
                 "\r\n\r\n1\r\nA\r\n0\r\nX-T: 1\r\n\n", &st, NULL);
    is_int(st, 400, "strict: trailer section ended by a bare LF is 400");
    test_request("GET /x\tb HTTP/1.1\r\nHost: a\r\n\r\n", &st, NULL);
    is_int(st, 400, "strict: a tab inside the request-target is 400");
    test_request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked"
                 "\r\n\r\n1\r\nA\r\n0\r\n\r\n", &st, &r);
    is_int(st, 0, "strict: an exactly framed chunk passes");
    ok(r->body_done, "strict: an exactly framed chunk passes");
    {
        int          e;
        llhttp_t     p;
        const char  *bad = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding"
                           ": chunked\r\n\r\n1\r\nA\n60\r\n\r\n";

        /* llhttp alone, without our framing check: fails unless llhttp
           was compiled with LLHTTP_STRICT_MODE */
        test_request("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &st, &r);
        llhttp_init(&p, HTTP_REQUEST, &tg_http_request_settings);
        p.data = r->c;
        e = llhttp_execute(&p, bad, strlen(bad));
        if (e == HPE_PAUSED) {
            const char  *at = llhttp_get_error_pos(&p);

            llhttp_resume(&p);
            e = llhttp_execute(&p, at, strlen(at));
        }
        ok(e != HPE_OK,
           "llhttp itself refuses chunk data without CRLF (strict mode)");
        ok(e != HPE_PAUSED,
           "llhttp itself refuses chunk data without CRLF (strict mode)");
    }
    {
        size_t       i, len, bad;
        char         req[256];
        const char  *body = "5;e=1\r\nhello\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n"
                            "\r\n";
        const char  *head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-"
                            "Encoding: chunked\r\n\r\n";
        const char  *how[] = { "dropped", "doubled", "swapped", "replaced" };
        char         by[3];
        size_t       k;

        /* every CR and LF of a chunked body dropped, doubled, swapped for
           the other or replaced: never a complete, accepted body (a byte
           doubled after the last one belongs to the next request) */
        len = strlen(body);
        bad = 0;
        for (i = 0; i < len; i++) {
            if (body[i] != '\r' && body[i] != '\n') {
                continue;
            }
            for (k = 0; k < tg_nelts(how); k++) {
                if (k == 1 && i == len - 1) {
                    continue;
                }
                memset(by, 0, sizeof(by));
                if (k == 1) {
                    by[0] = by[1] = body[i];
                } else if (k == 2) {
                    by[0] = body[i] == '\r' ? '\n' : '\r';
                } else if (k == 3) {
                    by[0] = 'x';
                }
                snprintf(req, sizeof(req), "%s%.*s%s%s", head, (int) i, body,
                         by, body + i + 1);
                test_request(req, &st, &r);
                if (st == 0 && r->body_done) {
                    printf("# accepted: byte %zu (0x%02x) %s\n", i,
                           body[i], how[k]);
                    bad++;
                }
            }
        }
        ok(bad == 0, "a CR or LF dropped, doubled or replaced anywhere in a "
                     "chunked body is never accepted");
        snprintf(req, sizeof(req), "%s%s", head, body);
        test_request(req, &st, &r);
        is_int(st, 0, "the body itself is accepted");
        ok(r->body_done, "the body itself is accepted");
    }
    /* trailers: fields the gateway sets in the head are refused there */
    {
        size_t       i;
        char         req[256];
        const char  *names[] = { "Host", "Transfer-Encoding",
                                 "Content-Length", "Connection", "TE",
                                 "X-Forwarded-For", "X-Forwarded-Proto",
                                 "X-Forwarded-Host", "Forwarded",
                                 "traceparent", "Tracestate", "Upgrade" };

        for (i = 0; i < tg_nelts(names); i++) {
            snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nHost: a\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n"
                     "%s: x\r\n\r\n", names[i]);
            test_request(req, &st, &r);
            is_int(st, 400, names[i]);
        }
        test_request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
                     "chunked\r\n\r\n1\r\nA\r\n0\r\nX-Checksum: 1\r\n"
                     "\r\n", &st, &r);
        ok(st == 0,
           "another trailer field passes and is not taken as a header");
        ok(r->body_done,
           "another trailer field passes and is not taken as a header");
        is_int(r->headers.nelts, 2,
               "another trailer field passes and is not taken as a header");
    }

    /* responses */
    ok(test_response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", &r),
       "200 response");
    ok(r->upstream.done, "200 response");
    is_int(r->upstream.status, 200, "200 response");
    ok(!test_response("HTTP/1.1 \r\nContent-Length: 0\r\n\r\n", NULL),
       "fuzz_response crash: a status line without a code is refused");
    ok(!test_response("HTTP/1.1 20\r\nContent-Length: 0\r\n\r\n", NULL),
       "a two-digit status is refused");
    ok(!test_response("HTTP/1.1 304 Ned\rg: \"x\"\r\n\r\n", NULL),
       "fuzz_response crash: a header with an empty name is refused");
    ok(!test_response("HTTP/1.1 200 OK\r\nX Y: 1\r\nContent-Length: 0\r\n"
                      "\r\n", NULL),
       "a response header name with a space is refused");
    ok(test_response("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content"
                     "\r\n\r\n", &r), "1xx skipped, then 204");
    is_int(r->upstream.status, 204, "1xx skipped, then 204: the status");
    ok(test_response("HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n"
                     "HTTP/1.1 204 No Content\r\n\r\n", &r),
       "fuzz_response crash: a 1xx has no body, whatever its Content-Length");
    is_int(r->upstream.status, 204, "... the 204 is the response");
    is_int(r->upstream.body_bytes, 0, "... and no body bytes");

    done_testing();
    return 0;
}
