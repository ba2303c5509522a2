#include <tg_config.h>
#include <tg_core.h>
#include <tg_cycle.h>
#include <tg_process.h>

#include <event2/thread.h>
#include <openssl/ssl.h>


static void
tg_usage(FILE *out)
{
    fprintf(out,
            "usage: tracegate [-?hvVtT] [-s signal] [-p prefix] [-c file]\n"
            "\n"
            "options:\n"
            "  -?,-h         this help\n"
            "  -v            show version and exit\n"
            "  -V            show version and configure options, then exit\n"
            "  -t            test configuration and exit\n"
            "  -T            test configuration, dump it and exit\n"
            "  -s signal     send signal to the master process: "
            "stop, quit, reopen, reload\n"
            "  -p prefix     set prefix path (default: %s)\n"
            "  -c filename   set configuration file (default: "
            "conf/tracegate.conf)\n",
            TG_PREFIX);
}


static int
tg_send_signal(tg_cycle_t *cycle, const char *name)
{
    int       signo, fd;
    char     *path, buf[32];
    ssize_t   n;
    long      pid;

    if (strcmp(name, "stop") == 0) {
        signo = SIGTERM;
    } else if (strcmp(name, "quit") == 0) {
        signo = SIGQUIT;
    } else if (strcmp(name, "reopen") == 0) {
        signo = SIGUSR1;
    } else if (strcmp(name, "reload") == 0) {
        signo = SIGHUP;
    } else {
        fprintf(stderr, "tracegate: invalid option: \"-s %s\"\n", name);
        return 1;
    }
    path = tg_conf_full_path(cycle->pool, cycle->prefix, &cycle->main.pid);
    fd = open(path, O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "tracegate: [error] open() \"%s\" failed (%d: %s)\n",
                path, errno, strerror(errno));
        return 1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        fprintf(stderr, "tracegate: [error] invalid PID in \"%s\"\n", path);
        return 1;
    }
    buf[n] = '\0';
    pid = strtol(buf, NULL, 10);
    if (pid <= 0) {
        fprintf(stderr, "tracegate: [error] invalid PID in \"%s\"\n", path);
        return 1;
    }
    if (kill((pid_t) pid, signo) < 0) {
        fprintf(stderr, "tracegate: [error] kill(%ld, %d) failed (%d: %s)\n",
                pid, signo, errno, strerror(errno));
        return 1;
    }
    return 0;
}


static int
tg_write_pid(tg_cycle_t *cycle)
{
    int    fd;
    char  *path, buf[32];
    int    n;

    path = tg_conf_full_path(cycle->pool, cycle->prefix, &cycle->main.pid);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        tg_log_error(TG_LOG_EMERG, &tg_log_global, errno,
                     "open() \"%s\" failed", path);
        return TG_ERROR;
    }
    n = snprintf(buf, sizeof(buf), "%d\n", (int) getpid());
    if (write(fd, buf, (size_t) n) != n) {
        close(fd);
        return TG_ERROR;
    }
    close(fd);
    return TG_OK;
}


static void
tg_remove_pid(tg_cycle_t *cycle)
{
    char  *path;

    path = tg_conf_full_path(cycle->pool, cycle->prefix, &cycle->main.pid);
    if (path) {
        unlink(path);
    }
}


static int
tg_daemonize(void)
{
    int  fd;

    switch (fork()) {
    case -1:
        return TG_ERROR;
    case 0:
        break;
    default:
        exit(0);
    }
    if (setsid() < 0) {
        return TG_ERROR;
    }
    umask(0022);
    fd = open("/dev/null", O_RDWR);
    if (fd < 0) {
        return TG_ERROR;
    }
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    if (fd > STDERR_FILENO) {
        close(fd);
    }
    return TG_OK;
}


int
main(int argc, char **argv)
{
    int          i, test, dump, rc;
    char        *p, err[TG_CONF_ERRLEN + 64], cwd[PATH_MAX];
    const char  *prefix, *conf_file, *signal_name;
    tg_cycle_t  *cycle;

    prefix = NULL;
    conf_file = "conf/tracegate.conf";
    signal_name = NULL;
    test = 0;
    dump = 0;

    for (i = 1; i < argc; i++) {
        p = argv[i];
        if (p[0] != '-' || p[1] == '\0' || p[2] != '\0') {
            fprintf(stderr, "tracegate: invalid option: \"%s\"\n", p);
            return 1;
        }
        switch (p[1]) {
        case '?':
        case 'h':
            tg_usage(stdout);
            return 0;
        case 'v':
            fprintf(stderr, "tracegate version %s\n", TG_VERSION);
            return 0;
        case 'V':
            fprintf(stderr, "tracegate version %s\nbuilt by %s\n"
                            "configure arguments: %s\nmodules: %s\n",
                    TG_VERSION, TG_CC, TG_CONFIGURE_ARGS, TG_MODULES);
            return 0;
        case 't':
            test = 1;
            break;
        case 'T':
            test = 1;
            dump = 1;
            break;
        case 'p':
        case 'c':
        case 's':
            if (i + 1 >= argc) {
                fprintf(stderr, "tracegate: option \"-%c\" requires an "
                                "argument\n", p[1]);
                return 1;
            }
            if (p[1] == 'p') {
                prefix = argv[++i];
            } else if (p[1] == 'c') {
                conf_file = argv[++i];
            } else {
                signal_name = argv[++i];
            }
            break;
        default:
            fprintf(stderr, "tracegate: invalid option: \"%s\"\n", p);
            tg_usage(stderr);
            return 1;
        }
    }

    if (prefix == NULL) {
        prefix = TG_PREFIX;
    } else if (prefix[0] != '/') {
        /* a relative prefix is taken from the starting directory */
        if (getcwd(cwd, sizeof(cwd) - strlen(prefix) - 2) == NULL) {
            fprintf(stderr, "tracegate: getcwd() failed\n");
            return 1;
        }
        if (strcmp(prefix, ".") != 0) {
            strcat(cwd, "/");
            strcat(cwd, prefix);
        }
        prefix = strdup(cwd);
    }

    /* libevent threading and the modules' libraries set up once, before
       any fork or thread */
    if (evthread_use_pthreads() < 0) {
        fprintf(stderr, "tracegate: evthread_use_pthreads() failed\n");
        return 1;
    }
    OPENSSL_init_ssl(0, NULL);
    tg_module_init_indexes();
    for (i = 0; tg_modules[i]; i++) {
        if (tg_modules[i]->init_master
            && tg_modules[i]->init_master() != TG_OK)
        {
            return 1;
        }
    }

    cycle = tg_cycle_load(prefix, conf_file, err, sizeof(err));
    if (cycle == NULL) {
        fprintf(stderr, "tracegate: [emerg] %s\n", err);
        if (test) {
            fprintf(stderr, "tracegate: configuration file %s%s test "
                            "failed\n",
                    conf_file[0] == '/' ? "" : prefix,
                    conf_file[0] == '/' ? conf_file : conf_file);
        }
        return 1;
    }
    tg_cycle = cycle;

    if (test) {
        fprintf(stderr, "tracegate: the configuration file %s syntax is ok\n",
                cycle->conf_file);
        fprintf(stderr, "tracegate: configuration file %s test is "
                        "successful\n", cycle->conf_file);
        if (dump) {
            tg_cycle_dump(cycle, stdout);
        }
        return 0;
    }
    if (signal_name) {
        return tg_send_signal(cycle, signal_name);
    }

    if (tg_process_open_error_log(cycle) != TG_OK) {
        fprintf(stderr, "tracegate: [emerg] %s\n", cycle->conf_error);
        return 1;
    }
    if (tg_process_open_listeners(cycle) != TG_OK) {
        fprintf(stderr, "tracegate: [emerg] %s\n", cycle->conf_error);
        return 1;
    }
    tg_log_global.file = &cycle->error_log_file;
    tg_log_global.level = cycle->error_log_level;

    if (cycle->main.daemon) {
        if (tg_daemonize() != TG_OK) {
            fprintf(stderr, "tracegate: [emerg] daemonize failed\n");
            return 1;
        }
        tg_log_to_stderr = 0;
        /* a daemon must not hold the caller's terminal or pipe open:
           stderr (libraries, sanitizers) goes to the error log */
        if (cycle->error_log_file.fd > STDERR_FILENO) {
            dup2(cycle->error_log_file.fd, STDERR_FILENO);
        } else if (cycle->error_log_file.fd != STDERR_FILENO) {
            int  fd = open("/dev/null", O_WRONLY);

            if (fd >= 0) {
                dup2(fd, STDERR_FILENO);
                close(fd);
            }
        }
    }
    if (tg_write_pid(cycle) != TG_OK) {
        return 1;
    }
    tg_log_error(TG_LOG_NOTICE, &tg_log_global, 0,
                 "tracegate/%s started, configuration %s", TG_VERSION,
                 cycle->conf_file);

    rc = tg_master_run(cycle, prefix, conf_file);
    tg_remove_pid(tg_cycle);
    return rc;
}
