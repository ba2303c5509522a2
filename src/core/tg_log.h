#ifndef _TG_LOG_H_INCLUDED_
#define _TG_LOG_H_INCLUDED_

/*
 * Error log. One line per call: time, level, pid, the connection number and
 * the trace id when the log belongs to a request, then the message and the
 * errno text when err != 0. Lines are written with one write(2) to an
 * O_APPEND descriptor shared by master and workers.
 */

#define TG_LOG_STDERR 0
#define TG_LOG_EMERG  1
#define TG_LOG_ALERT  2
#define TG_LOG_CRIT   3
#define TG_LOG_ERR    4
#define TG_LOG_WARN   5
#define TG_LOG_NOTICE 6
#define TG_LOG_INFO   7
#define TG_LOG_DEBUG  8

#define TG_LOG_LINE_MAX 2048

typedef struct {
    int    fd;
    char  *path; /* NULL for stderr */
} tg_log_file_t;

struct tg_log_s {
    tg_log_file_t  *file;
    int             level;
    uint64_t        connection; /* 0: not a connection */
    const u_char   *trace_id;   /* 32 hex, or NULL */
};

/* The process-wide log, writing to stderr until a config sets a file. */
extern tg_log_t  tg_log_global;

#define tg_log_error(lvl, log, err, ...)                                      \
    do {                                                                       \
        if ((log)->level >= (lvl)) {                                           \
            tg_log_write(lvl, log, err, __VA_ARGS__);                          \
        }                                                                      \
    } while (0)

#define tg_log_debug(log, ...) tg_log_error(TG_LOG_DEBUG, log, 0, __VA_ARGS__)

void tg_log_write(int level, tg_log_t *log, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Level name ("error") to number; TG_ERROR when unknown. */
int tg_log_parse_level(const tg_str_t *name);

/*
 * Opens path for appending into file (fd kept when reopen fails). Returns
 * TG_OK or TG_ERROR with errno set.
 */
int tg_log_open(tg_log_file_t *file, const char *path);

/* Reopens the global log file (SIGUSR1); logs failures to the old fd. */
void tg_log_reopen(tg_log_t *log);

/* Escapes bytes for a log line: \xHH for controls, quotes and backslash. */
size_t tg_log_escape(u_char *dst, size_t dlen, const u_char *src, size_t n);

#endif /* _TG_LOG_H_INCLUDED_ */
