#ifndef _TG_TAP_H_INCLUDED_
#define _TG_TAP_H_INCLUDED_

/*
 * Minimal TAP producer for the unit tests: prove reads what this prints.
 * Every assertion returns 1 when it passed, so that a test can guard what
 * depends on it: if (ok(p != NULL, "...")) { is_int(p->n, 2, "..."); }
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int  tap_n, tap_failed;

#define ok(cond, ...)                                                          \
    tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...)                                                 \
    tap_is_int((long long) (got), (long long) (want), __FILE__, __LINE__,      \
               __VA_ARGS__)

/* C strings; NULL equals only NULL */
#define is_str(got, want, ...)                                                 \
    tap_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)

/* Compares a length-delimited slice with a C string. */
#define is_mem(gotp, gotlen, want, ...)                                        \
    tap_is_mem((gotp), (size_t) (gotlen), (want), __FILE__, __LINE__,         \
               __VA_ARGS__)

static inline int
tap_vok(int pass, const char *file, int line, const char *fmt, va_list ap)
{
    tap_n++;
    printf("%s %d - ", pass ? "ok" : "not ok", tap_n);
    vprintf(fmt, ap);
    printf("\n");
    if (!pass) {
        tap_failed++;
        printf("#   Failed test at %s line %d.\n", file, line);
    }
    return pass;
}


static inline int
tap_ok(int pass, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline int
tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    pass = tap_vok(pass, file, line, fmt, ap);
    va_end(ap);
    return pass;
}


static inline int
tap_is_int(long long got, long long want, const char *file, int line,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static inline int
tap_is_int(long long got, long long want, const char *file, int line,
    const char *fmt, ...)
{
    int      pass;
    va_list  ap;

    va_start(ap, fmt);
    pass = tap_vok(got == want, file, line, fmt, ap);
    va_end(ap);
    if (!pass) {
        printf("#   got: %lld\n#   expected: %lld\n", got, want);
    }
    return pass;
}


static inline int
tap_is_str(const char *got, const char *want, const char *file, int line,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static inline int
tap_is_str(const char *got, const char *want, const char *file, int line,
    const char *fmt, ...)
{
    int      pass;
    va_list  ap;

    va_start(ap, fmt);
    pass = tap_vok((got && want) ? strcmp(got, want) == 0 : got == want, file,
                   line, fmt, ap);
    va_end(ap);
    if (!pass) {
        printf("#   got: '%s'\n#   expected: '%s'\n", got ? got : "(null)",
               want ? want : "(null)");
    }
    return pass;
}


static inline int
tap_is_mem(const void *got, size_t len, const char *want, const char *file,
    int line, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static inline int
tap_is_mem(const void *got, size_t len, const char *want, const char *file,
    int line, const char *fmt, ...)
{
    int      pass;
    va_list  ap;

    va_start(ap, fmt);
    pass = tap_vok(len == strlen(want) && memcmp(got, want, len) == 0, file,
                   line, fmt, ap);
    va_end(ap);
    if (!pass) {
        printf("#   got: '%.*s'\n#   expected: '%s'\n", (int) len,
               (const char *) got, want);
    }
    return pass;
}


static inline int
done_testing(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif /* _TG_TAP_H_INCLUDED_ */
