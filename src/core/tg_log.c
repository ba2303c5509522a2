#include <tg_config.h>
#include <tg_core.h>


static tg_log_file_t  tg_log_stderr = { STDERR_FILENO, NULL };

tg_log_t  tg_log_global = { &tg_log_stderr, TG_LOG_NOTICE, 0, NULL };

static const char  *tg_log_levels[] = {
    "stderr", "emerg", "alert", "crit", "error",
    "warn",   "notice", "info", "debug"
};


void
tg_log_write(int level, tg_log_t *log, int err, const char *fmt, ...)
{
    int      n;
    char     line[TG_LOG_LINE_MAX];
    size_t   len;
    va_list  args;

    len = tg_time_log_str(line);
    n = snprintf(line + len, sizeof(line) - len, " [%s] %d#%d: ",
                 tg_log_levels[level], (int) getpid(), tg_worker_slot);
    len += (n > 0) ? (size_t) n : 0;
    if (log->connection) {
        n = snprintf(line + len, sizeof(line) - len, "*%" PRIu64 " ",
                     log->connection);
        len += (n > 0) ? (size_t) n : 0;
    }

    va_start(args, fmt);
    n = vsnprintf(line + len, sizeof(line) - len, fmt, args);
    va_end(args);
    len += (n > 0) ? (size_t) n : 0;
    if (len > sizeof(line) - 80) {
        len = sizeof(line) - 80;
    }

    if (err) {
        n = snprintf(line + len, sizeof(line) - len, " (%d: %s)", err,
                     strerror(err));
        len += (n > 0) ? (size_t) n : 0;
    }
    if (log->trace_id) {
        n = snprintf(line + len, sizeof(line) - len, ", trace_id=%.32s",
                     (const char *) log->trace_id);
        len += (n > 0) ? (size_t) n : 0;
    }
    if (len > sizeof(line) - 1) {
        len = sizeof(line) - 1;
    }
    line[len++] = '\n';

    if (write(log->file->fd, line, len) < 0) {
        /* nothing sensible left to report to */
    }
    if (level <= TG_LOG_ERR && log->file->fd != STDERR_FILENO
        && tg_log_to_stderr)
    {
        if (write(STDERR_FILENO, line, len) < 0) {
            /* ignore */
        }
    }
}


int
tg_log_parse_level(const tg_str_t *name)
{
    int  i;

    for (i = 1; i < (int) tg_nelts(tg_log_levels); i++) {
        if (tg_str_caseeq_c(name, tg_log_levels[i])) {
            return i;
        }
    }
    if (tg_str_caseeq_c(name, "err")) {
        return TG_LOG_ERR;
    }
    return TG_ERROR;
}


int
tg_log_open(tg_log_file_t *file, const char *path)
{
    int  fd;

    if (strcmp(path, "stderr") == 0) {
        file->fd = STDERR_FILENO;
        file->path = NULL;
        return TG_OK;
    }
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return TG_ERROR;
    }
    if (file->path && file->fd > STDERR_FILENO) {
        close(file->fd);
    }
    file->fd = fd;
    if (file->path != path) {
        free(file->path);
        file->path = strdup(path);
    }
    return TG_OK;
}


void
tg_log_reopen(tg_log_t *log)
{
    int  fd;

    if (log->file->path == NULL) {
        return;
    }
    fd = open(log->file->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
              0644);
    if (fd < 0) {
        tg_log_error(TG_LOG_ALERT, log, errno, "reopen \"%s\" failed",
                     log->file->path);
        return;
    }
    if (dup2(fd, log->file->fd) < 0) {
        tg_log_error(TG_LOG_ALERT, log, errno, "dup2 for \"%s\" failed",
                     log->file->path);
    }
    close(fd);
}


size_t
tg_log_escape(u_char *dst, size_t dlen, const u_char *src, size_t n)
{
    static const char  hex[] = "0123456789ABCDEF";
    size_t             i, o;
    u_char             c;

    o = 0;
    for (i = 0; i < n; i++) {
        c = src[i];
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
            if (o + 4 > dlen) {
                break;
            }
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 0xf];
        } else {
            if (o + 1 > dlen) {
                break;
            }
            dst[o++] = c;
        }
    }
    return o;
}
