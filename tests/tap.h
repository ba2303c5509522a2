#ifndef _TG_TAP_H_INCLUDED_
#define _TG_TAP_H_INCLUDED_

/* Minimal TAP producer for the unit tests: prove reads what this prints. */

#include <stdio.h>
#include <string.h>

static int  tap_n, tap_failed;

#define ok(cond, ...)                                                          \
    tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...)                                                 \
    do {                                                                       \
        long long g_ = (long long) (got), w_ = (long long) (want);             \
        if (!tap_ok(g_ == w_, __FILE__, __LINE__, __VA_ARGS__)) {              \
            printf("#   got: %lld\n#   expected: %lld\n", g_, w_);           \
        }                                                                      \
    } while (0)

#define is_str(got, want, ...)                                                 \
    do {                                                                       \
        const char *g_ = (got), *w_ = (want);                                  \
        int         e_ = (g_ && w_) ? strcmp(g_, w_) == 0 : g_ == w_;         \
        if (!tap_ok(e_, __FILE__, __LINE__, __VA_ARGS__)) {                    \
            printf("#   got: '%s'\n#   expected: '%s'\n", g_ ? g_ : "(null)",  \
                   w_ ? w_ : "(null)");                                        \
        }                                                                      \
    } while (0)

/* Compares a length-delimited slice with a C string. */
#define is_mem(gotp, gotlen, want, ...)                                        \
    do {                                                                       \
        const char *w_ = (want);                                               \
        size_t      gl_ = (size_t) (gotlen);                                   \
        int e_ = gl_ == strlen(w_) && memcmp((gotp), w_, gl_) == 0;            \
        if (!tap_ok(e_, __FILE__, __LINE__, __VA_ARGS__)) {                    \
            printf("#   got: '%.*s'\n#   expected: '%s'\n", (int) gl_,         \
                   (const char *) (gotp), w_);                                 \
        }                                                                      \
    } while (0)

static inline int
tap_ok(int pass, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline int
tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
    va_list  ap;

    tap_n++;
    printf("%s %d - ", pass ? "ok" : "not ok", tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!pass) {
        tap_failed++;
        printf("#   Failed test at %s line %d.\n", file, line);
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
