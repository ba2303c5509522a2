#include <tg_config.h>
#include <tg_core.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <tg_cycle.h>
#include <tg_process.h>
#include <tg_event.h>


typedef struct {
    struct sockaddr_storage  addr;
    socklen_t                addrlen;
    int                      slot;
    int                      fd;
    unsigned                 used:1;
} tg_lsock_t;

typedef struct {
    pid_t     pid;
    int       slot;
    unsigned  generation;
    unsigned  exiting:1;
} tg_worker_proc_t;

static tg_lsock_t        tg_lsocks[256];
static size_t            tg_nlsocks;
static tg_worker_proc_t  tg_workers[TG_MAX_WORKERS * 2];
static unsigned          tg_generation;

static volatile sig_atomic_t  tg_sig_reload, tg_sig_quit, tg_sig_terminate,
    tg_sig_reopen, tg_sig_child;

static void tg_master_signal_handler(int signo);
static int tg_spawn_worker(tg_cycle_t *cycle, int slot);
static void tg_signal_workers(int signo, int only_old);
static void tg_reap_children(tg_cycle_t *cycle);
static int tg_live_workers(void);


int
tg_process_worker_count(tg_cycle_t *cycle)
{
    long  n;

    if (cycle->main.workers > 0) {
        return (int) cycle->main.workers;
    }
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return (int) tg_max(1, tg_min(n, TG_MAX_WORKERS));
}


int
tg_process_open_error_log(tg_cycle_t *cycle)
{
    int       level;
    char     *path;
    tg_str_t  rest, file, lvl;

    rest = cycle->main.error_log;
    tg_str_next_token(&rest, ' ', &file);
    level = TG_LOG_NOTICE;
    if (tg_str_next_token(&rest, ' ', &lvl) && lvl.len) {
        level = tg_log_parse_level(&lvl);
        if (level == TG_ERROR) {
            snprintf(cycle->conf_error, sizeof(cycle->conf_error),
                     "error_log: unknown level \"" TG_STR_FMT "\"",
                     TG_STR_ARG(&lvl));
            return TG_ERROR;
        }
    }
    if (tg_str_caseeq_c(&file, "stderr")) {
        path = "stderr";
    } else {
        path = tg_conf_full_path(cycle->pool, cycle->prefix, &file);
    }
    if (path == NULL || tg_log_open(&cycle->error_log_file, path) != TG_OK) {
        snprintf(cycle->conf_error, sizeof(cycle->conf_error),
                 "cannot open error log \"%s\": %s", path ? path : "",
                 strerror(errno));
        return TG_ERROR;
    }
    cycle->error_log_level = level;
    return TG_OK;
}


/*
 * SO_REUSEPORT would let a second tracegate (or anything else of the same
 * user) share the port silently. A probe bound without it fails with
 * EADDRINUSE when someone already listens there. Addresses this master
 * holds already are not probed.
 */
static int
tg_lsock_probe(tg_listen_t *ls)
{
    int  fd, on, rc, err;

    fd = socket(ls->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return TG_OK; /* the real bind reports what is wrong */
    }
    on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (ls->addr.ss_family == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    }
    rc = bind(fd, (struct sockaddr *) &ls->addr, ls->addrlen);
    err = errno;
    close(fd);
    if (rc < 0 && err == EADDRINUSE) {
        errno = EADDRINUSE;
        return TG_ERROR;
    }
    return TG_OK;
}


static int
tg_lsock_open(tg_listen_t *ls)
{
    int  fd, on;

    fd = socket(ls->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd < 0) {
        return -1;
    }
    on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0
        || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0)
    {
        goto failed;
    }
    if (ls->addr.ss_family == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    }
    /* accepted sockets inherit it on Linux: no setsockopt per connection */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (bind(fd, (struct sockaddr *) &ls->addr, ls->addrlen) < 0
        || listen(fd, ls->backlog) < 0)
    {
        goto failed;
    }
    return fd;
failed:
    on = errno;
    close(fd);
    errno = on;
    return -1;
}


/* whether this master already has a socket on ls's address */
static int
tg_lsock_held(tg_listen_t *ls)
{
    size_t  j;

    for (j = 0; j < tg_nlsocks; j++) {
        if (tg_lsocks[j].addrlen == ls->addrlen
            && memcmp(&tg_lsocks[j].addr, &ls->addr, ls->addrlen) == 0)
        {
            return 1;
        }
    }
    return 0;
}


int
tg_process_open_listeners(tg_cycle_t *cycle)
{
    int           n, slot, fd;
    size_t        i, j;
    tg_listen_t  *ls;

    n = tg_process_worker_count(cycle);
    for (j = 0; j < tg_nlsocks; j++) {
        tg_lsocks[j].used = 0;
    }
    ls = cycle->main.listens.elts;
    for (i = 0; i < cycle->main.listens.nelts; i++) {
        ls[i].fds = tg_pcalloc(cycle->pool, n * sizeof(int));
        if (ls[i].fds == NULL) {
            return TG_ERROR;
        }
        ls[i].nfds = (size_t) n;
        for (slot = 0; slot < n; slot++) {
            fd = -1;
            for (j = 0; j < tg_nlsocks; j++) {
                if (tg_lsocks[j].slot == slot && !tg_lsocks[j].used
                    && tg_lsocks[j].addrlen == ls[i].addrlen
                    && memcmp(&tg_lsocks[j].addr, &ls[i].addr, ls[i].addrlen)
                           == 0)
                {
                    tg_lsocks[j].used = 1;
                    fd = tg_lsocks[j].fd;
                    break;
                }
            }
            if (fd < 0 && slot == 0 && !tg_lsock_held(&ls[i])
                && tg_lsock_probe(&ls[i]) != TG_OK)
            {
                snprintf(cycle->conf_error, sizeof(cycle->conf_error),
                         "bind() to " TG_STR_FMT " failed (%d: %s): another "
                         "process listens there", TG_STR_ARG(&ls[i].text),
                         EADDRINUSE, strerror(EADDRINUSE));
                return TG_ERROR;
            }
            if (fd < 0) {
                if (tg_nlsocks == tg_nelts(tg_lsocks)) {
                    snprintf(cycle->conf_error, sizeof(cycle->conf_error),
                             "too many listening sockets");
                    return TG_ERROR;
                }
                fd = tg_lsock_open(&ls[i]);
                if (fd < 0) {
                    snprintf(cycle->conf_error, sizeof(cycle->conf_error),
                             "bind() to " TG_STR_FMT " failed (%d: %s)",
                             TG_STR_ARG(&ls[i].text), errno, strerror(errno));
                    return TG_ERROR;
                }
                memcpy(&tg_lsocks[tg_nlsocks].addr, &ls[i].addr,
                       ls[i].addrlen);
                tg_lsocks[tg_nlsocks].addrlen = ls[i].addrlen;
                tg_lsocks[tg_nlsocks].slot = slot;
                tg_lsocks[tg_nlsocks].fd = fd;
                tg_lsocks[tg_nlsocks].used = 1;
                tg_nlsocks++;
            }
            ls[i].fds[slot] = fd;
        }
    }
    return TG_OK;
}


/* Closes the master's copy of sockets the current cycle no longer uses. */
static void
tg_process_close_unused_listeners(void)
{
    size_t  i, j;

    for (i = 0, j = 0; i < tg_nlsocks; i++) {
        if (!tg_lsocks[i].used) {
            close(tg_lsocks[i].fd);
            continue;
        }
        tg_lsocks[j++] = tg_lsocks[i];
    }
    tg_nlsocks = j;
}


static void
tg_master_signal_handler(int signo)
{
    switch (signo) {
    case SIGHUP:
        tg_sig_reload = 1;
        break;
    case SIGQUIT:
        tg_sig_quit = 1;
        break;
    case SIGTERM:
    case SIGINT:
        tg_sig_terminate = 1;
        break;
    case SIGUSR1:
        tg_sig_reopen = 1;
        break;
    case SIGCHLD:
        tg_sig_child = 1;
        break;
    }
}


/*
 * A worker process, from fork to exit: its loop (tg_event), the modules'
 * process hooks around it. Never returns.
 */
void
tg_worker_run(tg_cycle_t *cycle, int slot)
{
    size_t            i;
    sigset_t          set;
    struct sigaction  sa;

    tg_worker_slot = slot;
    tg_cycle = cycle;
    tg_log_to_stderr = 0;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    sigemptyset(&set);
    sigprocmask(SIG_SETMASK, &set, NULL);

    if (tg_random_init() != TG_OK) {
        tg_log_error(TG_LOG_EMERG, &tg_log_global, 0,
                     "RAND_bytes() failed: cannot make trace ids");
        exit(2);
    }
    if (tg_event_init_worker(cycle, slot) != TG_OK) {
        exit(2);
    }
    for (i = 0; tg_modules[i]; i++) {
        if (tg_modules[i]->init_process
            && tg_modules[i]->init_process(cycle) != TG_OK)
        {
            tg_log_error(TG_LOG_EMERG, &tg_log_global, 0,
                         "module init in worker failed");
            exit(2);
        }
    }

    tg_event_run();

    for (i = 0; tg_modules[i]; i++) {
        if (tg_modules[i]->exit_process) {
            tg_modules[i]->exit_process(cycle);
        }
    }
    tg_log_error(TG_LOG_INFO, &tg_log_global, 0, "worker exiting");
    exit(0);
}


static int
tg_spawn_worker(tg_cycle_t *cycle, int slot)
{
    size_t  i;
    pid_t   pid;

    for (i = 0; i < tg_nelts(tg_workers); i++) {
        if (tg_workers[i].pid == 0) {
            break;
        }
    }
    if (i == tg_nelts(tg_workers)) {
        tg_log_error(TG_LOG_ALERT, &tg_log_global, 0,
                     "too many worker processes");
        return TG_ERROR;
    }
    pid = fork();
    if (pid < 0) {
        tg_log_error(TG_LOG_ALERT, &tg_log_global, errno, "fork() failed");
        return TG_ERROR;
    }
    if (pid == 0) {
        tg_worker_run(cycle, slot);
        /* not reached */
    }
    tg_workers[i].pid = pid;
    tg_workers[i].slot = slot;
    tg_workers[i].generation = tg_generation;
    tg_workers[i].exiting = 0;
    tg_log_error(TG_LOG_NOTICE, &tg_log_global, 0,
                 "start worker process %d (slot %d)", (int) pid, slot);
    return TG_OK;
}


static void
tg_signal_workers(int signo, int only_old)
{
    size_t  i;

    for (i = 0; i < tg_nelts(tg_workers); i++) {
        if (tg_workers[i].pid == 0
            || (only_old && tg_workers[i].generation == tg_generation))
        {
            continue;
        }
        if (signo == SIGQUIT || signo == SIGTERM) {
            tg_workers[i].exiting = 1;
        }
        if (kill(tg_workers[i].pid, signo) < 0 && errno != ESRCH) {
            tg_log_error(TG_LOG_ALERT, &tg_log_global, errno,
                         "kill(%d, %d) failed", (int) tg_workers[i].pid,
                         signo);
        }
    }
}


static void
tg_reap_children(tg_cycle_t *cycle)
{
    int     status, slot;
    size_t  i;
    pid_t   pid;

    for (;;) {
        pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) {
            return;
        }
        for (i = 0; i < tg_nelts(tg_workers); i++) {
            if (tg_workers[i].pid == pid) {
                break;
            }
        }
        if (i == tg_nelts(tg_workers)) {
            continue;
        }
        slot = tg_workers[i].slot;
        tg_workers[i].pid = 0;
        if (WIFSIGNALED(status)) {
            tg_log_error(TG_LOG_ALERT, &tg_log_global, 0,
                         "worker process %d exited on signal %d", (int) pid,
                         WTERMSIG(status));
        } else {
            tg_log_error(TG_LOG_NOTICE, &tg_log_global, 0,
                         "worker process %d exited with code %d", (int) pid,
                         WEXITSTATUS(status));
        }
        if (!tg_workers[i].exiting && !tg_sig_quit && !tg_sig_terminate
            && tg_workers[i].generation == tg_generation)
        {
            tg_log_error(TG_LOG_NOTICE, &tg_log_global, 0,
                         "respawning worker for slot %d", slot);
            tg_spawn_worker(cycle, slot);
        }
    }
}


static int
tg_live_workers(void)
{
    int     n;
    size_t  i;

    n = 0;
    for (i = 0; i < tg_nelts(tg_workers); i++) {
        if (tg_workers[i].pid) {
            n++;
        }
    }
    return n;
}


static tg_cycle_t *
tg_master_reload(tg_cycle_t *cycle, const char *prefix, const char *conf_file)
{
    int          i, n;
    char         err[TG_CONF_ERRLEN + 64];
    tg_cycle_t  *ncycle;

    tg_log_error(TG_LOG_NOTICE, &tg_log_global, 0, "reconfiguring");
    ncycle = tg_cycle_load(prefix, conf_file, err, sizeof(err));
    if (ncycle == NULL) {
        tg_log_error(TG_LOG_EMERG, &tg_log_global, 0,
                     "%s; reload refused, the old configuration keeps "
                     "serving", err);
        return cycle;
    }
    if (tg_process_open_error_log(ncycle) != TG_OK
        || tg_process_open_listeners(ncycle) != TG_OK)
    {
        tg_log_error(TG_LOG_EMERG, &tg_log_global, 0,
                     "%s; reload refused, the old configuration keeps "
                     "serving", ncycle->conf_error);
        /* re-mark the old cycle's sockets so none gets closed */
        tg_process_open_listeners(cycle);
        tg_process_close_unused_listeners();
        if (ncycle->error_log_file.fd > STDERR_FILENO
            && ncycle->error_log_file.fd != cycle->error_log_file.fd)
        {
            close(ncycle->error_log_file.fd);
        }
        tg_cycle_free(ncycle);
        return cycle;
    }
    tg_log_global.file = &ncycle->error_log_file;
    tg_log_global.level = ncycle->error_log_level;

    tg_generation++;
    n = tg_process_worker_count(ncycle);
    for (i = 0; i < n; i++) {
        tg_spawn_worker(ncycle, i);
    }
    /* the old workers finish their in-flight requests, then exit */
    tg_signal_workers(SIGQUIT, 1);
    tg_process_close_unused_listeners();
    if (cycle->error_log_file.fd > STDERR_FILENO
        && cycle->error_log_file.fd != ncycle->error_log_file.fd)
    {
        close(cycle->error_log_file.fd);
    }
    tg_cycle = ncycle;
    tg_cycle_free(cycle);
    return ncycle;
}


int
tg_master_run(tg_cycle_t *cycle, const char *prefix, const char *conf_file)
{
    int               i, n;
    sigset_t          set, empty;
    uint64_t          deadline;
    struct sigaction  sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = tg_master_signal_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    sigemptyset(&empty);

    tg_process_close_unused_listeners();
    n = tg_process_worker_count(cycle);
    for (i = 0; i < n; i++) {
        tg_spawn_worker(cycle, i);
    }

    deadline = 0;
    for (;;) {
        if (deadline) {
            /* poll while waiting for workers to finish a stop */
            struct timespec  ts = { 0, 50 * 1000 * 1000 };

            sigprocmask(SIG_UNBLOCK, &set, NULL);
            nanosleep(&ts, NULL);
            sigprocmask(SIG_BLOCK, &set, NULL);
        } else {
            sigsuspend(&empty);
        }

        if (tg_sig_child) {
            tg_sig_child = 0;
            tg_reap_children(cycle);
        }
        if (tg_sig_terminate && !deadline) {
            tg_log_error(TG_LOG_NOTICE, &tg_log_global, 0,
                         "terminating (fast stop)");
            tg_signal_workers(SIGTERM, 0);
            deadline = tg_time_ms() + 5000;
        } else if (tg_sig_quit && !deadline) {
            tg_log_error(TG_LOG_NOTICE, &tg_log_global, 0,
                         "gracefully shutting down");
            tg_signal_workers(SIGQUIT, 0);
            deadline = tg_time_ms() + (uint64_t) cycle->main.shutdown_timeout
                       + 5000;
        }
        if (deadline) {
            if (tg_live_workers() == 0) {
                break;
            }
            if (tg_time_ms() > deadline) {
                tg_log_error(TG_LOG_WARN, &tg_log_global, 0,
                             "workers still running after the stop "
                             "deadline: killing them");
                tg_signal_workers(SIGKILL, 0);
                deadline = tg_time_ms() + 1000;
            }
            continue;
        }
        if (tg_sig_reload) {
            tg_sig_reload = 0;
            cycle = tg_master_reload(cycle, prefix, conf_file);
        }
        if (tg_sig_reopen) {
            tg_sig_reopen = 0;
            tg_log_error(TG_LOG_NOTICE, &tg_log_global, 0, "reopening logs");
            tg_log_reopen(&tg_log_global);
            tg_signal_workers(SIGUSR1, 0);
        }
    }

    tg_log_error(TG_LOG_NOTICE, &tg_log_global, 0, "exit");
    return 0;
}
