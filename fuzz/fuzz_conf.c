#include <tg_config.h>
#include <tg_core.h>
#include <tg_cycle.h>
#include <tg_http_upstream.h>
#include <tg_http_route.h>

#include <dlfcn.h>
#include <netdb.h>

/*
 * libFuzzer target: the whole config loader. The bytes are written as
 * conf/fuzz.conf under a private prefix and loaded with tg_cycle_load()
 * (line reader, inih, directive tables, defaults, OTEL_* merge, upstream
 * and route checks, html pages), then dumped as -T does and freed, so that
 * LeakSanitizer sees anything the loader loses on a success or an error.
 *
 * A loaded config must keep its promises: on failure the error message is
 * non-empty and NUL-terminated; on success every route has an upstream.
 *
 * Host names would make getaddrinfo() query DNS on every input, so the
 * harness resolves numeric addresses and "localhost" only.
 */

static char  tg_fuzz_prefix[64];
static char  tg_fuzz_conf[96];


int
getaddrinfo(const char *node, const char *service,
    const struct addrinfo *hints, struct addrinfo **res)
{
    struct addrinfo  h;

    static int (*real)(const char *, const char *, const struct addrinfo *,
                       struct addrinfo **);

    if (real == NULL) {
        *(void **) &real = dlsym(RTLD_NEXT, "getaddrinfo");
        if (real == NULL) {
            return EAI_FAIL;
        }
    }
    memset(&h, 0, sizeof(h));
    if (hints) {
        h = *hints;
    }
    if (node == NULL || strcmp(node, "localhost") != 0) {
        h.ai_flags |= AI_NUMERICHOST;
    } else {
        node = "127.0.0.1";
    }
    return real(node, service, &h, res);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char  **e, *eq, name[128];
    size_t  n;

    snprintf(tg_fuzz_prefix, sizeof(tg_fuzz_prefix), "/tmp/tg-fuzz-conf.%d",
             (int) getpid());
    snprintf(tg_fuzz_conf, sizeof(tg_fuzz_conf), "%s/conf/fuzz.conf",
             tg_fuzz_prefix);
    mkdir(tg_fuzz_prefix, 0700);
    snprintf(name, sizeof(name), "%s/conf", tg_fuzz_prefix);
    mkdir(name, 0700);
    snprintf(name, sizeof(name), "%s/html", tg_fuzz_prefix);
    mkdir(name, 0700);
    snprintf(name, sizeof(name), "%s/logs", tg_fuzz_prefix);
    mkdir(name, 0700);

    /* the environment must not change what an input means */
    for (e = environ; e && *e;) {
        eq = strchr(*e, '=');
        n = eq ? (size_t) (eq - *e) : strlen(*e);
        if (strncmp(*e, "OTEL_", 5) == 0 && n < sizeof(name)) {
            memcpy(name, *e, n);
            name[n] = '\0';
            unsetenv(name);
            continue;
        }
        e++;
    }
    tg_log_global.level = -1; /* quiet: errors are the expected result */
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int           fd;
    char          err[TG_CONF_ERRLEN + 64];
    FILE         *null;
    size_t        i;
    ssize_t       w;
    tg_cycle_t   *cycle;
    tg_http_route_t **rt;

    fd = open(tg_fuzz_conf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return 0;
    }
    w = write(fd, data, size);
    close(fd);
    if (w != (ssize_t) size) {
        return 0;
    }

    memset(err, 0x5a, sizeof(err));
    cycle = tg_cycle_load(tg_fuzz_prefix, "conf/fuzz.conf", err, sizeof(err));
    if (cycle == NULL) {
        if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0') {
            abort(); /* every failure names what is wrong */
        }
        return 0;
    }

    rt = tg_http_routes(cycle)->elts;
    for (i = 0; i < tg_http_routes(cycle)->nelts; i++) {
        if (rt[i]->upstream == NULL || rt[i]->prefix.len == 0) {
            abort();
        }
    }
    null = fopen("/dev/null", "w");
    if (null) {
        tg_cycle_dump(cycle, null);
        fclose(null);
    }
    tg_cycle_free(cycle);
    return 0;
}
