#include <tg_config.h>
#include <tg_core.h>
#include <tg_cycle.h>
#include <tg_http.h>
#include <tg_access_log_format.h>

#include <event2/event.h>


/*
 * The access log, set in [main]:
 *
 *   access_log = PATH [FORMAT] [buffer=SIZE] [flush=TIME]  |  off
 *   log_format = NAME [escape=default|json] FORMAT-STRING   (repeatable)
 *
 * FORMAT is combined, trace (the default), json or a log_format name.
 * Each worker renders lines into its own buffer and writes it with one
 * write(2) to an O_APPEND descriptor when the next line would not fit,
 * when the flush timer fires (a line is never older than flush) and when
 * the worker exits, so lines of different workers never interleave. A
 * failed write drops the buffered lines, counts them and says so in the
 * error log at most once per TG_ACCESS_LOG_ERROR_INTERVAL; it never stops
 * the worker. SIGUSR1 (forwarded by the master) flushes and reopens.
 */

#define TG_ACCESS_LOG_DEFAULT_PATH     "logs/access.log"
#define TG_ACCESS_LOG_DEFAULT_FORMAT   "trace"
#define TG_ACCESS_LOG_BUFFER           (64 * 1024)
#define TG_ACCESS_LOG_BUFFER_MIN       4096
#define TG_ACCESS_LOG_BUFFER_MAX       (16 * 1024 * 1024)
#define TG_ACCESS_LOG_FLUSH            1000  /* ms */
#define TG_ACCESS_LOG_ERROR_INTERVAL   10000 /* ms between error messages */

typedef struct {
    /* access_log as written; set:0 means the default */
    tg_str_t              path;
    tg_str_t              format;
    int64_t               buffer;
    int64_t               flush;    /* ms */
    const char           *file;     /* where access_log was written */
    int                   line;
    unsigned              set:1;
    unsigned              off:1;
    tg_array_t           *formats;  /* tg_access_log_fmt_t from log_format */

    /* effective, from init_conf */
    char                 *full;     /* absolute path */
    tg_access_log_fmt_t  *fmt;
} tg_access_log_conf_t;

/* one worker's log: the master never writes */
typedef struct {
    tg_access_log_conf_t   *conf;   /* NULL: nothing to log here */
    int                     fd;     /* -1 while the file cannot be opened */
    u_char                 *start;
    u_char                 *pos;
    u_char                 *end;
    size_t                  nlines; /* lines in [start, pos) */
    struct event           *timer;
    struct event           *reopen;
    unsigned                timer_armed:1;
    uint64_t                dropped;
    uint64_t                last_error_ms;
    int                     pid;
    tg_access_log_clock_t   clock;
} tg_access_log_worker_t;

static void *tg_access_log_create_conf(tg_cycle_t *cycle);
static int tg_access_log_init_conf(tg_cycle_t *cycle, void *conf);
static int tg_access_log_init_process(tg_cycle_t *cycle);
static void tg_access_log_exit_process(tg_cycle_t *cycle);
static void tg_access_log_dump_conf(tg_cycle_t *cycle, void *conf,
    FILE *out);
static int tg_access_log_handler(tg_http_request_t *r);
static char *tg_access_log_set(tg_conf_t *cf, tg_command_t *cmd,
    void *conf);
static char *tg_access_log_set_format(tg_conf_t *cf, tg_command_t *cmd,
    void *conf);
static int tg_access_log_conf_error(tg_cycle_t *cycle,
    tg_access_log_conf_t *alc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int tg_access_log_next_word(tg_str_t *rest, tg_str_t *word);
static int tg_access_log_open(const char *path);
static void tg_access_log_flush(tg_access_log_worker_t *w);
static void tg_access_log_flush_handler(evutil_socket_t fd, short what,
    void *ctx);
static void tg_access_log_reopen_handler(evutil_socket_t fd, short what,
    void *ctx);
static void tg_access_log_reopen(tg_access_log_worker_t *w);


static tg_command_t  tg_access_log_commands[] = {

    { tg_string("access_log"), TG_CONF_TAKE1 | TG_CONF_MAIN,
      tg_access_log_set, 0 },

    { tg_string("log_format"), TG_CONF_TAKE1 | TG_CONF_MAIN | TG_CONF_MULTI,
      tg_access_log_set_format, 0 },

    tg_null_command
};


static const tg_http_module_t  tg_access_log_http_module = {
    { [TG_HTTP_LOG_PHASE] = tg_access_log_handler }
};


tg_module_t  tg_access_log_module = {
    .section = tg_null_string,
    .commands = tg_access_log_commands,
    .create_conf = tg_access_log_create_conf,
    .init_conf = tg_access_log_init_conf,
    .init_process = tg_access_log_init_process,
    .exit_process = tg_access_log_exit_process,
    .dump_conf = tg_access_log_dump_conf,
    .ctx = &tg_access_log_http_module
};


static tg_access_log_worker_t  tg_access_log_worker = { .fd = -1 };


static void *
tg_access_log_create_conf(tg_cycle_t *cycle)
{
    tg_access_log_conf_t  *alc;

    alc = tg_pcalloc(cycle->pool, sizeof(tg_access_log_conf_t));
    if (alc == NULL) {
        return NULL;
    }
    alc->buffer = TG_CONF_UNSET;
    alc->flush = TG_CONF_UNSET;
    alc->formats = tg_array_create(cycle->pool, 4,
                                   sizeof(tg_access_log_fmt_t));
    if (alc->formats == NULL) {
        return NULL;
    }
    return alc;
}


/* Splits the next space-separated word off *rest; 0 at the end. */
static int
tg_access_log_next_word(tg_str_t *rest, tg_str_t *word)
{
    size_t  i;

    tg_str_trim_ows(rest);
    if (rest->len == 0) {
        return 0;
    }
    for (i = 0; i < rest->len && rest->data[i] != ' ' && rest->data[i] != '\t';
         i++)
    {
        /* find the end of the word */
    }
    word->data = rest->data;
    word->len = i;
    rest->data += i;
    rest->len -= i;
    return 1;
}


/*
 * access_log = PATH [FORMAT] [buffer=SIZE] [flush=TIME] | off. The format
 * name is resolved in init_conf, because log_format may come later; the
 * place is kept for that error.
 */
static char *
tg_access_log_set(tg_conf_t *cf, tg_command_t *cmd, void *conf)
{
    tg_str_t               rest, word, arg;
    tg_access_log_conf_t  *alc = conf;

    if (tg_pstrcopy(cf->pool, &rest, cf->value.data, cf->value.len)
        != TG_OK)
    {
        return "out of memory for";
    }
    alc->set = 1;
    alc->file = cf->file;
    alc->line = cf->line;

    if (!tg_access_log_next_word(&rest, &alc->path)) {
        tg_conf_error(cf, "access_log needs a path, or \"off\"");
        return "invalid value";
    }
    if (tg_str_caseeq_c(&alc->path, "off")) {
        if (tg_access_log_next_word(&rest, &word)) {
            tg_conf_error(cf, "access_log: nothing may follow \"off\"");
            return "invalid value";
        }
        alc->off = 1;
        return TG_CONF_OK;
    }

    while (tg_access_log_next_word(&rest, &word)) {
        if (word.len > 7 && memcmp(word.data, "buffer=", 7) == 0) {
            arg.data = word.data + 7;
            arg.len = word.len - 7;
            if (tg_parse_size(&arg, &alc->buffer) != TG_OK
                || alc->buffer < TG_ACCESS_LOG_BUFFER_MIN
                || alc->buffer > TG_ACCESS_LOG_BUFFER_MAX)
            {
                tg_conf_error(cf, "access_log: invalid \"" TG_STR_FMT
                              "\" (4k to 16m)", TG_STR_ARG(&word));
                return "invalid value";
            }
        } else if (word.len > 6 && memcmp(word.data, "flush=", 6) == 0) {
            arg.data = word.data + 6;
            arg.len = word.len - 6;
            if (tg_parse_time_ms(&arg, &alc->flush) != TG_OK
                || alc->flush < 1 || alc->flush > 3600 * 1000)
            {
                tg_conf_error(cf, "access_log: invalid \"" TG_STR_FMT
                              "\" (use 500ms, 1s, 5s)", TG_STR_ARG(&word));
                return "invalid value";
            }
        } else if (alc->format.len == 0 && memchr(word.data, '=', word.len)
                                            == NULL)
        {
            alc->format = word;
        } else {
            tg_conf_error(cf, "access_log: unexpected \"" TG_STR_FMT "\" "
                          "(PATH [FORMAT] [buffer=SIZE] [flush=TIME])",
                          TG_STR_ARG(&word));
            return "invalid value";
        }
    }
    return TG_CONF_OK;
}


/* log_format = NAME [escape=default|json] FORMAT-STRING */
static char *
tg_access_log_set_format(tg_conf_t *cf, tg_command_t *cmd, void *conf)
{
    int                    escape;
    size_t                 i;
    tg_str_t               rest, name, word;
    tg_access_log_fmt_t   *fmt, *f;
    tg_access_log_conf_t  *alc = conf;
    char                   err[256];

    if (tg_pstrcopy(cf->pool, &rest, cf->value.data, cf->value.len)
        != TG_OK)
    {
        return "out of memory for";
    }
    if (!tg_access_log_next_word(&rest, &name)) {
        tg_conf_error(cf, "log_format needs a name and a format string");
        return "invalid value";
    }
    for (i = 0; i < name.len; i++) {
        if (!isalnum(name.data[i]) && name.data[i] != '_'
            && name.data[i] != '-')
        {
            tg_conf_error(cf, "log_format: invalid name \"" TG_STR_FMT
                          "\" (letters, digits, '_', '-')",
                          TG_STR_ARG(&name));
            return "invalid value";
        }
    }
    if (tg_access_log_is_builtin(&name)) {
        tg_conf_error(cf, "log_format: \"" TG_STR_FMT "\" is a built-in "
                      "format", TG_STR_ARG(&name));
        return "invalid value";
    }
    f = alc->formats->elts;
    for (i = 0; i < alc->formats->nelts; i++) {
        if (tg_str_eq(&f[i].name, &name)) {
            tg_conf_error(cf, "log_format \"" TG_STR_FMT "\" is already "
                          "defined", TG_STR_ARG(&name));
            return "invalid value";
        }
    }

    escape = TG_ACCESS_LOG_ESC_DEFAULT;
    tg_str_trim_ows(&rest);
    if (rest.len > 7 && memcmp(rest.data, "escape=", 7) == 0) {
        tg_access_log_next_word(&rest, &word);
        if (tg_str_caseeq_c(&word, "escape=json")) {
            escape = TG_ACCESS_LOG_ESC_JSON;
        } else if (!tg_str_caseeq_c(&word, "escape=default")) {
            tg_conf_error(cf, "log_format: invalid \"" TG_STR_FMT "\" "
                          "(escape=default or escape=json)",
                          TG_STR_ARG(&word));
            return "invalid value";
        }
        tg_str_trim_ows(&rest);
    }
    if (rest.len == 0) {
        tg_conf_error(cf, "log_format \"" TG_STR_FMT "\" needs a format "
                      "string", TG_STR_ARG(&name));
        return "invalid value";
    }

    fmt = tg_array_push(alc->formats);
    if (fmt == NULL) {
        return "out of memory for";
    }
    memset(fmt, 0, sizeof(tg_access_log_fmt_t));
    fmt->name = name;
    if (tg_access_log_compile(cf->pool, fmt, &rest, escape, err, sizeof(err))
        != TG_OK)
    {
        alc->formats->nelts--;
        tg_conf_error(cf, "log_format \"" TG_STR_FMT "\": %s",
                      TG_STR_ARG(&name), err);
        return "invalid value";
    }
    return TG_CONF_OK;
}


/* An init_conf error, at the access_log line when it was written. */
static int
tg_access_log_conf_error(tg_cycle_t *cycle, tg_access_log_conf_t *alc,
    const char *fmt, ...)
{
    int      n;
    va_list  args;

    n = 0;
    if (alc->file) {
        n = snprintf(cycle->conf_error, TG_CONF_ERRLEN, "%s:%d: ", alc->file,
                     alc->line);
        if (n < 0 || n >= TG_CONF_ERRLEN) {
            return TG_ERROR;
        }
    }
    va_start(args, fmt);
    vsnprintf(cycle->conf_error + n, TG_CONF_ERRLEN - n, fmt, args);
    va_end(args);
    return TG_ERROR;
}


static int
tg_access_log_open(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}


/*
 * Applies the defaults, resolves the format and checks that the file can
 * be opened (creating it, as nginx -t does), so a bad path fails the load
 * rather than every worker.
 */
static int
tg_access_log_init_conf(tg_cycle_t *cycle, void *conf)
{
    int                    fd;
    size_t                 i;
    tg_access_log_fmt_t   *f;
    tg_access_log_conf_t  *alc = conf;

    if (!alc->set) {
        tg_str_set(&alc->path, TG_ACCESS_LOG_DEFAULT_PATH);
    }
    if (alc->off) {
        return TG_OK;
    }
    if (alc->format.len == 0) {
        tg_str_set(&alc->format, TG_ACCESS_LOG_DEFAULT_FORMAT);
    }
    tg_conf_default(alc->buffer, TG_ACCESS_LOG_BUFFER);
    tg_conf_default(alc->flush, TG_ACCESS_LOG_FLUSH);

    f = alc->formats->elts;
    for (i = 0; i < alc->formats->nelts; i++) {
        if (tg_str_eq(&f[i].name, &alc->format)) {
            alc->fmt = &f[i];
            break;
        }
    }
    if (alc->fmt == NULL) {
        alc->fmt = tg_pcalloc(cycle->pool, sizeof(tg_access_log_fmt_t));
        if (alc->fmt == NULL) {
            return tg_access_log_conf_error(cycle, alc, "out of memory");
        }
        switch (tg_access_log_builtin(cycle->pool, &alc->format, alc->fmt)) {
        case TG_OK:
            break;
        case TG_DECLINED:
            return tg_access_log_conf_error(cycle, alc,
                       "access_log: unknown format \"" TG_STR_FMT "\" "
                       "(combined, trace, json or a log_format name)",
                       TG_STR_ARG(&alc->format));
        default:
            return tg_access_log_conf_error(cycle, alc, "out of memory");
        }
    }

    alc->full = tg_conf_full_path(cycle->pool, cycle->prefix, &alc->path);
    if (alc->full == NULL) {
        return tg_access_log_conf_error(cycle, alc, "out of memory");
    }
    fd = tg_access_log_open(alc->full);
    if (fd < 0) {
        return tg_access_log_conf_error(cycle, alc,
                   "access_log: cannot open \"%s\": %s", alc->full,
                   strerror(errno));
    }
    close(fd);
    return TG_OK;
}


static int
tg_access_log_init_process(tg_cycle_t *cycle)
{
    tg_access_log_conf_t    *alc;
    tg_access_log_worker_t  *w = &tg_access_log_worker;

    alc = tg_module_conf(cycle, tg_access_log_module);
    if (alc->off) {
        return TG_OK;
    }
    w->start = tg_pnalloc(cycle->pool, (size_t) alc->buffer);
    if (w->start == NULL) {
        return TG_ERROR;
    }
    w->pos = w->start;
    w->end = w->start + alc->buffer;
    w->nlines = 0;
    w->pid = (int) getpid();
    w->clock.sec = -1;

    w->timer = evtimer_new(tg_event_worker.base, tg_access_log_flush_handler,
                           w);
    /* a second SIGUSR1 event next to the core's error-log reopen */
    w->reopen = evsignal_new(tg_event_worker.base, SIGUSR1,
                             tg_access_log_reopen_handler, w);
    if (w->timer == NULL || w->reopen == NULL
        || evsignal_add(w->reopen, NULL) < 0)
    {
        tg_log_error(TG_LOG_EMERG, &tg_log_global, 0,
                     "access_log: cannot create its events");
        return TG_ERROR;
    }

    w->fd = tg_access_log_open(alc->full);
    if (w->fd < 0) {
        /* lines are dropped and counted until a USR1 reopen succeeds */
        tg_log_error(TG_LOG_ALERT, &tg_log_global, errno,
                     "access_log: open(\"%s\") failed", alc->full);
    }
    w->conf = alc;
    return TG_OK;
}


static void
tg_access_log_exit_process(tg_cycle_t *cycle)
{
    tg_access_log_worker_t  *w = &tg_access_log_worker;

    if (w->conf == NULL) {
        return;
    }
    tg_access_log_flush(w);
    if (w->dropped) {
        tg_log_error(TG_LOG_WARN, &tg_log_global, 0,
                     "access_log: %" PRIu64 " lines were dropped",
                     w->dropped);
    }
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    event_free(w->timer);
    event_free(w->reopen);
    w->timer = NULL;
    w->reopen = NULL;
    w->conf = NULL;
}


static int
tg_access_log_handler(tg_http_request_t *r)
{
    u_char                  *p;
    time_t                   sec;
    unsigned                 truncated;
    struct timeval           tv;
    tg_access_log_ctx_t      ctx;
    tg_access_log_worker_t  *w = &tg_access_log_worker;

    if (w->conf == NULL) {
        return TG_OK;
    }

    /* the instant the SERVER span ended, when there is one */
    ctx.now_ns = tg_http_request_end_ns(r);
    sec = (time_t) (ctx.now_ns / 1000000000ULL);
    if (w->clock.sec != sec) {
        tg_access_log_clock_update(&w->clock, sec);
    }
    ctx.clock = &w->clock;
    ctx.pid = w->pid;

    /* one byte is kept for the LF; a line longer than the buffer is cut */
    p = tg_access_log_render(w->conf->fmt, r, &ctx, w->pos, w->end - 1,
                             &truncated);
    if (truncated && w->pos != w->start) {
        tg_access_log_flush(w);
        p = tg_access_log_render(w->conf->fmt, r, &ctx, w->pos, w->end - 1,
                                 &truncated);
    }
    *p++ = LF;
    w->pos = p;
    w->nlines++;

    if (!w->timer_armed) {
        tv.tv_sec = w->conf->flush / 1000;
        tv.tv_usec = (w->conf->flush % 1000) * 1000;
        evtimer_add(w->timer, &tv);
        w->timer_armed = 1;
    }
    return TG_OK;
}


/*
 * Writes the buffer out. A short write keeps the rest for the next try
 * (regular files only fall short when the disk fills, and the next call
 * reports why); an error drops the buffered lines and counts them.
 */
static void
tg_access_log_flush(tg_access_log_worker_t *w)
{
    int       err;
    size_t    len;
    ssize_t   n;
    uint64_t  now;

    while (w->pos > w->start) {
        len = (size_t) (w->pos - w->start);
        if (w->fd < 0) {
            err = EBADF;
            goto failed;
        }
        n = write(w->fd, w->start, len);
        if (n == (ssize_t) len) {
            w->pos = w->start;
            w->nlines = 0;
            return;
        }
        if (n > 0) {
            memmove(w->start, w->start + n, len - (size_t) n);
            w->pos -= n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        err = n < 0 ? errno : EIO;
        goto failed;
    }
    return;

failed:
    w->dropped += w->nlines;
    w->pos = w->start;
    w->nlines = 0;
    now = tg_time_ms();
    if (w->last_error_ms == 0
        || now - w->last_error_ms >= TG_ACCESS_LOG_ERROR_INTERVAL)
    {
        w->last_error_ms = now;
        tg_log_error(TG_LOG_ERR, &tg_log_global, err,
                     "access_log: write() to \"%s\" failed, %" PRIu64
                     " lines dropped so far", w->conf->full, w->dropped);
    }
}


static void
tg_access_log_flush_handler(evutil_socket_t fd, short what, void *ctx)
{
    tg_access_log_worker_t  *w = ctx;

    w->timer_armed = 0;
    tg_access_log_flush(w);
}


static void
tg_access_log_reopen_handler(evutil_socket_t fd, short what, void *ctx)
{
    tg_access_log_reopen(ctx);
}


/* Buffered lines belong to the old file: flush first, then swap fds. */
static void
tg_access_log_reopen(tg_access_log_worker_t *w)
{
    int  fd;

    if (w->conf == NULL) {
        return;
    }
    tg_access_log_flush(w);
    fd = tg_access_log_open(w->conf->full);
    if (fd < 0) {
        tg_log_error(TG_LOG_ALERT, &tg_log_global, errno,
                     "access_log: reopen \"%s\" failed", w->conf->full);
        return;
    }
    if (w->fd >= 0) {
        close(w->fd);
    }
    w->fd = fd;
}


static void
tg_access_log_dump_conf(tg_cycle_t *cycle, void *conf, FILE *out)
{
    size_t                 i;
    tg_access_log_fmt_t   *f;
    tg_access_log_conf_t  *alc = conf;

    fprintf(out, "# [main] access log\n");
    if (alc->off) {
        fprintf(out, "access_log = off\n");
    } else {
        fprintf(out, "access_log = %s " TG_STR_FMT " buffer=%" PRId64
                " flush=%" PRId64 "ms\n", alc->full,
                TG_STR_ARG(&alc->format), alc->buffer, alc->flush);
    }
    f = alc->formats->elts;
    for (i = 0; i < alc->formats->nelts; i++) {
        fprintf(out, "log_format = " TG_STR_FMT " escape=%s " TG_STR_FMT
                "\n", TG_STR_ARG(&f[i].name),
                f[i].escape == TG_ACCESS_LOG_ESC_JSON ? "json" : "default",
                TG_STR_ARG(&f[i].source));
    }
    if (alc->fmt && alc->fmt->builtin) {
        fprintf(out, "# built-in format " TG_STR_FMT ": " TG_STR_FMT "\n",
                TG_STR_ARG(&alc->fmt->name), TG_STR_ARG(&alc->fmt->source));
    }
}
