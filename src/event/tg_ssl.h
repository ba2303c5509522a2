#ifndef _TG_SSL_H_INCLUDED_
#define _TG_SSL_H_INCLUDED_

/*
 * TLS with OpenSSL. Contexts are built in the master while the
 * configuration loads, so a bad certificate or key fails -t and start-up;
 * workers create one SSL per connection. [ssl] is the default server
 * context, [ssl NAME] a named one for `listen = ADDR ssl=NAME`; several
 * `certificate` lines are chosen by SNI.
 */

#include <openssl/ssl.h>

struct bufferevent;

typedef struct {
    tg_str_t     name;          /* empty for [ssl] */
    tg_array_t  *certificates;  /* tg_keyval_t: certificate file, key file */
    int          cert_lines[64];/* the line of each certificate */
    tg_str_t     min_protocol;  /* TLSv1.2 | TLSv1.3 */
    int64_t      session_timeout; /* ms */
    int          session_tickets;
    SSL_CTX    **ctxs;          /* one per certificate; [0] is the default */
    size_t       nctxs;
    const char  *conf_file;
    int          conf_line;
    unsigned     used:1;
} tg_ssl_conf_t;

/* [ssl] and [ssl NAME]: a built-in module (tg_ssl.c). */
extern tg_module_t  tg_ssl_module;

/*
 * A new SSL_CTX freed with the cycle's pool; NULL on failure (the error
 * stays queued for tg_ssl_error).
 */
SSL_CTX *tg_ssl_ctx_new(tg_cycle_t *cycle, const SSL_METHOD *method);

/*
 * Writes "FILE:LINE: " and fmt (one %s: arg) into cycle->conf_error,
 * followed by the first queued OpenSSL reason in parentheses, clears the
 * queue and returns TG_ERROR.
 */
int tg_ssl_error(tg_cycle_t *cycle, const char *file, int line,
    const char *fmt, const char *arg);

/*
 * Takes the first error of an OpenSSL error queue and empties the queue,
 * so that stale errors are not blamed on a later call: bev's own queue
 * (libevent moves the errors of a TLS bufferevent there) or, when bev is
 * NULL, the thread's. Writes the error's reason into text (len bytes,
 * NUL-terminated, at least 1) and returns the error code; returns 0 with
 * "" in text when the queue was empty.
 */
unsigned long tg_ssl_error_text(struct bufferevent *bev, char *text,
    size_t len);

/*
 * Logs "what: REASON" at level, REASON being the first error of the
 * thread's OpenSSL queue (just "what" when it is empty), and empties the
 * queue (tg_ssl_error_text).
 */
void tg_ssl_log_errors(tg_log_t *log, int level, const char *what);

#endif /* _TG_SSL_H_INCLUDED_ */
