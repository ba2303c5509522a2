#include <tg_config.h>
#include <tg_core.h>
#include <tg_cycle.h>

#include <glob.h>
#include <ini.h>


#define TG_CONF_MAX_DEPTH 8

typedef struct {
    FILE       *fp;
    tg_conf_t  *cf;
} tg_conf_reader_t;

static char *tg_conf_read_line(char *str, int num, void *stream);
static int tg_conf_handler(void *user, const char *section, const char *name,
    const char *value);
static int tg_conf_open_section(tg_conf_t *cf, tg_str_t *header);
static int tg_conf_include(tg_conf_t *cf, tg_str_t *pattern);
static int tg_conf_parse_fp(tg_conf_t *cf, const char *name, FILE *fp);
static tg_command_t *tg_conf_find(tg_command_t *cmds, tg_str_t *name);


int
tg_conf_error(tg_conf_t *cf, const char *fmt, ...)
{
    int      n;
    va_list  args;

    if (cf->failed) {
        return TG_ERROR;
    }
    cf->failed = 1;
    n = snprintf(cf->error, sizeof(cf->error), "%s:%d: ",
                 cf->file ? cf->file : "-", cf->line);
    if (n < 0 || (size_t) n >= sizeof(cf->error)) {
        return TG_ERROR;
    }
    va_start(args, fmt);
    vsnprintf(cf->error + n, sizeof(cf->error) - n, fmt, args);
    va_end(args);
    return TG_ERROR;
}


char *
tg_conf_full_path(tg_pool_t *pool, const char *prefix, tg_str_t *path)
{
    size_t  plen;
    char   *p;

    if (path->len && path->data[0] == '/') {
        return (char *) tg_pstrdup0(pool, path);
    }
    plen = strlen(prefix);
    p = tg_pnalloc(pool, plen + path->len + 1);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, prefix, plen);
    memcpy(p + plen, path->data, path->len);
    p[plen + path->len] = '\0';
    return p;
}


/*
 * inih calls this instead of fgets. It keeps the line count (the handler
 * gets none), refuses what inih r55 would misread (long lines are split,
 * indented lines continue the previous key) and opens sections itself so
 * that empty or repeated sections are seen.
 */
static char *
tg_conf_read_line(char *str, int num, void *stream)
{
    size_t             len;
    tg_str_t           line;
    tg_conf_reader_t  *rd;
    tg_conf_t         *cf;
    char               buf[1024];

    rd = stream;
    cf = rd->cf;
    if (cf->failed) {
        return NULL;
    }
    if (fgets(buf, sizeof(buf), rd->fp) == NULL) {
        return NULL;
    }
    cf->line++;
    len = strlen(buf);
    if (len && buf[len - 1] == '\n') {
        buf[--len] = '\0';
    } else if (!feof(rd->fp)) {
        tg_conf_error(cf, "line too long (at most %d characters)",
                      TG_CONF_LINE_MAX);
        return NULL;
    }
    if (len && buf[len - 1] == '\r') {
        buf[--len] = '\0';
    }
    if (len > TG_CONF_LINE_MAX || len >= (size_t) num - 2) {
        tg_conf_error(cf, "line too long (at most %d characters)",
                      TG_CONF_LINE_MAX);
        return NULL;
    }

    line.data = (u_char *) buf;
    line.len = len;
    if (len && (buf[0] == ' ' || buf[0] == '\t')) {
        tg_str_trim_ows(&line);
        if (line.len && line.data[0] != ';' && line.data[0] != '#') {
            tg_conf_error(cf, "indented line (continuation lines are not "
                              "supported)");
            return NULL;
        }
    }
    if (len && buf[0] == '[') {
        if (tg_conf_open_section(cf, &line) != TG_OK) {
            return NULL;
        }
    }

    memcpy(str, buf, len + 1);
    return str;
}


static int
tg_conf_section_once(tg_conf_t *cf, const char *name, unsigned *flag)
{
    if (*flag) {
        return tg_conf_error(cf, "section [%s] repeated", name);
    }
    *flag = 1;
    return TG_OK;
}


static int
tg_conf_open_section(tg_conf_t *cf, tg_str_t *header)
{
    size_t       i;
    tg_str_t     s, kind, arg;
    tg_cycle_t  *cycle;

    cycle = cf->cycle;
    s = *header;
    /* "[name arg]" with an optional comment after the bracket */
    for (i = 1; i < s.len && s.data[i] != ']'; i++) {
        /* find the closing bracket */
    }
    if (i == s.len) {
        return tg_conf_error(cf, "section header without ']'");
    }
    s.data++;
    s.len = i - 1;
    tg_str_trim_ows(&s);

    kind = s;
    arg.len = 0;
    arg.data = NULL;
    for (i = 0; i < s.len; i++) {
        if (s.data[i] == ' ' || s.data[i] == '\t') {
            kind.len = i;
            arg.data = s.data + i;
            arg.len = s.len - i;
            tg_str_trim_ows(&arg);
            break;
        }
    }

    cf->seen->nelts = 0;
    cf->module = NULL;

    if (tg_str_caseeq_c(&kind, "main") && arg.len == 0) {
        cf->ctx = &cycle->main;
        cf->cmds = tg_main_commands;
        return tg_conf_section_once(cf, "main", &cycle->seen_main);
    }
    if (tg_str_caseeq_c(&kind, "trace") && arg.len == 0) {
        cf->ctx = &cycle->trace;
        cf->cmds = tg_trace_commands;
        return tg_conf_section_once(cf, "trace", &cycle->seen_trace);
    }
    for (i = 0; tg_modules[i]; i++) {
        if (tg_modules[i]->section.len == 0
            || !tg_str_caseeq(&kind, &tg_modules[i]->section))
        {
            continue;
        }
        if (tg_modules[i]->add_section) {
            cf->module = tg_modules[i];
            cf->cmds = tg_modules[i]->commands;
            cf->ctx = tg_modules[i]->add_section(cf, cycle->module_conf[i],
                                                 &arg);
            return cf->ctx ? TG_OK : TG_ERROR;
        }
        if (arg.len == 0) {
            if (cycle->module_seen[i]) {
                return tg_conf_error(cf, "section [" TG_STR_FMT "] repeated",
                                     TG_STR_ARG(&kind));
            }
            cycle->module_seen[i] = 1;
            cf->module = tg_modules[i];
            cf->ctx = cycle->module_conf[i];
            cf->cmds = tg_modules[i]->commands;
            return TG_OK;
        }
    }
    return tg_conf_error(cf, "unknown section [" TG_STR_FMT "]",
                         TG_STR_ARG(&s));
}


static tg_command_t *
tg_conf_find(tg_command_t *cmds, tg_str_t *name)
{
    for (; cmds && cmds->name.len; cmds++) {
        if (tg_str_caseeq(&cmds->name, name)) {
            return cmds;
        }
    }
    return NULL;
}


static int
tg_conf_handler(void *user, const char *section, const char *name,
    const char *value)
{
    char          *rv;
    void          *ctx;
    size_t         i;
    tg_str_t      *seen;
    tg_conf_t     *cf;
    tg_command_t  *cmd;

    cf = user;
    if (cf->failed) {
        return 0;
    }
    cf->name.data = (u_char *) name;
    cf->name.len = strlen(name);
    cf->value.data = (u_char *) value;
    cf->value.len = strlen(value);

    if (cf->cmds == NULL) {
        tg_conf_error(cf, "\"%s\" outside of any section", name);
        return 0;
    }
    if (tg_str_caseeq_c(&cf->name, "include")) {
        return tg_conf_include(cf, &cf->value) == TG_OK;
    }

    ctx = cf->ctx;
    cmd = tg_conf_find(cf->cmds, &cf->name);
    if (cmd == NULL && cf->cmds == tg_main_commands) {
        for (i = 0; tg_modules[i] && cmd == NULL; i++) {
            cmd = tg_conf_find(tg_modules[i]->commands, &cf->name);
            if (cmd && !(cmd->flags & TG_CONF_MAIN)) {
                cmd = NULL;
            }
            ctx = cf->cycle->module_conf[i];
        }
    }
    if (cmd == NULL || (cf->module && (cmd->flags & TG_CONF_MAIN))) {
        tg_conf_error(cf, "unknown key \"%s\" in section [%s]", name,
                      section);
        return 0;
    }

    if (!(cmd->flags & TG_CONF_MULTI)) {
        seen = cf->seen->elts;
        for (i = 0; i < cf->seen->nelts; i++) {
            if (tg_str_caseeq(&seen[i], &cmd->name)) {
                tg_conf_error(cf, "\"%s\" is repeated in section [%s]", name,
                              section);
                return 0;
            }
        }
        seen = tg_array_push(cf->seen);
        if (seen == NULL) {
            tg_conf_error(cf, "out of memory");
            return 0;
        }
        *seen = cmd->name;
    }

    rv = cmd->set(cf, cmd, ctx);
    if (rv != TG_CONF_OK) {
        tg_conf_error(cf, "\"%s\": %s \"%s\"", name, rv,
                      (cmd->flags & TG_CONF_SECRET) ? "<redacted>" : value);
        return 0;
    }
    return 1;
}


int
tg_conf_secret(const tg_str_t *section, const tg_str_t *key)
{
    int            in;
    size_t         i;
    tg_str_t       name;
    tg_command_t  *cmd;

    name = section ? *section : (tg_str_t) tg_null_string;
    for (i = 0; i < name.len && name.data[i] != ' '; i++) {
        /* "[upstream NAME]": the section's kind is its first word */
    }
    name.len = i;
    for (i = 0; tg_modules[i]; i++) {
        for (cmd = tg_modules[i]->commands; cmd && cmd->name.len; cmd++) {
            if (!(cmd->flags & TG_CONF_SECRET)
                || !tg_str_caseeq(&cmd->name, key))
            {
                continue;
            }
            in = section == NULL
                 || ((cmd->flags & TG_CONF_MAIN)
                     ? tg_str_caseeq_c(&name, "main")
                     : tg_str_caseeq(&tg_modules[i]->section, &name));
            if (in) {
                return 1;
            }
        }
    }
    return 0;
}


static int
tg_conf_parse_fp(tg_conf_t *cf, const char *name, FILE *fp)
{
    int               rc;
    tg_conf_reader_t  rd;
    tg_str_t         *f;

    f = tg_array_push(&cf->cycle->conf_files);
    if (f == NULL) {
        return tg_conf_error(cf, "out of memory");
    }
    f->data = (u_char *) name;
    f->len = strlen(name);

    rd.fp = fp;
    rd.cf = cf;
    cf->file = name;
    cf->line = 0;
    rc = ini_parse_stream(tg_conf_read_line, &rd, tg_conf_handler, cf);
    if (cf->failed) {
        return TG_ERROR;
    }
    if (rc != 0) {
        /* inih found a line it cannot read (no '=' or ':', or a bad header) */
        cf->line = rc > 0 ? rc : cf->line;
        return tg_conf_error(cf, "syntax error (expected \"key = value\" "
                                 "or \"[section]\")");
    }
    return TG_OK;
}


int
tg_conf_parse_file(tg_conf_t *cf, const char *path)
{
    int    rc;
    FILE  *fp;

    fp = fopen(path, "r");
    if (fp == NULL) {
        return tg_conf_error(cf, "cannot open \"%s\": %s", path,
                             strerror(errno));
    }
    rc = tg_conf_parse_fp(cf, path, fp);
    fclose(fp);
    return rc;
}


static int
tg_conf_include(tg_conf_t *cf, tg_str_t *pattern)
{
    int            rc, line;
    char          *full;
    void          *ctx;
    size_t         i;
    glob_t         g;
    tg_array_t    *seen;
    const char    *file;
    tg_module_t   *module;
    tg_command_t  *cmds;

    if (cf->depth >= TG_CONF_MAX_DEPTH) {
        return tg_conf_error(cf, "includes nested deeper than %d",
                             TG_CONF_MAX_DEPTH);
    }
    full = tg_conf_full_path(cf->pool, cf->cycle->prefix, pattern);
    if (full == NULL) {
        return tg_conf_error(cf, "out of memory");
    }
    rc = glob(full, GLOB_ERR, NULL, &g);
    if (rc == GLOB_NOMATCH) {
        /* an empty conf.d/ is normal; a missing plain file is not */
        if (strpbrk(full, "*?[") != NULL) {
            return TG_OK;
        }
        return tg_conf_error(cf, "include \"%s\": no such file", full);
    }
    if (rc != 0) {
        return tg_conf_error(cf, "include \"%s\" failed", full);
    }

    file = cf->file;
    line = cf->line;
    ctx = cf->ctx;
    cmds = cf->cmds;
    module = cf->module;
    seen = cf->seen;

    rc = TG_OK;
    for (i = 0; i < g.gl_pathc && rc == TG_OK; i++) {
        tg_str_t  p = { strlen(g.gl_pathv[i]), (u_char *) g.gl_pathv[i] };

        cf->depth++;
        cf->ctx = NULL;
        cf->cmds = NULL;
        cf->module = NULL;
        cf->seen = tg_array_create(cf->pool, 8, sizeof(tg_str_t));
        rc = tg_conf_parse_file(cf, (char *) tg_pstrdup0(cf->pool, &p));
        cf->depth--;
    }
    globfree(&g);
    if (rc != TG_OK) {
        return rc;
    }

    cf->file = file;
    cf->line = line;
    cf->ctx = ctx;
    cf->cmds = cmds;
    cf->module = module;
    cf->seen = seen;
    return TG_OK;
}


char *
tg_conf_set_str(tg_conf_t *cf, tg_command_t *cmd, void *conf)
{
    tg_str_t  *s;

    s = (tg_str_t *) ((u_char *) conf + cmd->offset);
    if (tg_pstrcopy(cf->pool, s, cf->value.data, cf->value.len) != TG_OK) {
        return "out of memory for";
    }
    return TG_CONF_OK;
}


char *
tg_conf_set_flag(tg_conf_t *cf, tg_command_t *cmd, void *conf)
{
    int  *f;

    f = (int *) ((u_char *) conf + cmd->offset);
    if (tg_str_caseeq_c(&cf->value, "on")) {
        *f = 1;
    } else if (tg_str_caseeq_c(&cf->value, "off")) {
        *f = 0;
    } else {
        return "must be \"on\" or \"off\", not";
    }
    return TG_CONF_OK;
}


char *
tg_conf_set_num(tg_conf_t *cf, tg_command_t *cmd, void *conf)
{
    int64_t  *n;

    n = (int64_t *) ((u_char *) conf + cmd->offset);
    if (tg_atoi(cf->value.data, cf->value.len, n) != TG_OK) {
        return "invalid number";
    }
    return TG_CONF_OK;
}


char *
tg_conf_set_msec(tg_conf_t *cf, tg_command_t *cmd, void *conf)
{
    int64_t  *n;

    n = (int64_t *) ((u_char *) conf + cmd->offset);
    if (tg_parse_time_ms(&cf->value, n) != TG_OK) {
        return "invalid time (use 500ms, 30s, 2m, 1h)";
    }
    return TG_CONF_OK;
}


char *
tg_conf_set_size(tg_conf_t *cf, tg_command_t *cmd, void *conf)
{
    int64_t  *n;

    n = (int64_t *) ((u_char *) conf + cmd->offset);
    if (tg_parse_size(&cf->value, n) != TG_OK) {
        return "invalid size (use 512, 16k, 1m, 1g)";
    }
    return TG_CONF_OK;
}


char *
tg_conf_add_str(tg_conf_t *cf, tg_command_t *cmd, void *conf)
{
    tg_str_t     *s;
    tg_array_t  **a;

    a = (tg_array_t **) ((u_char *) conf + cmd->offset);
    if (*a == NULL) {
        *a = tg_array_create(cf->pool, 4, sizeof(tg_str_t));
        if (*a == NULL) {
            return "out of memory for";
        }
    }
    s = tg_array_push(*a);
    if (s == NULL
        || tg_pstrcopy(cf->pool, s, cf->value.data, cf->value.len) != TG_OK)
    {
        return "out of memory for";
    }
    return TG_CONF_OK;
}


char *
tg_conf_add_keyval(tg_conf_t *cf, tg_command_t *cmd, void *conf)
{
    size_t        i;
    tg_str_t      k, v;
    tg_keyval_t  *kv;
    tg_array_t  **a;

    for (i = 0; i < cf->value.len; i++) {
        if (cf->value.data[i] == '=' || cf->value.data[i] == ' ') {
            break;
        }
    }
    k.data = cf->value.data;
    k.len = i;
    tg_str_trim_ows(&k);
    if (i == cf->value.len || k.len == 0) {
        return "expects \"key=value\" or \"key value\", not";
    }
    v.data = cf->value.data + i + 1;
    v.len = cf->value.len - i - 1;
    tg_str_trim_ows(&v);

    a = (tg_array_t **) ((u_char *) conf + cmd->offset);
    if (*a == NULL) {
        *a = tg_array_create(cf->pool, 4, sizeof(tg_keyval_t));
        if (*a == NULL) {
            return "out of memory for";
        }
    }
    kv = tg_array_push(*a);
    if (kv == NULL || tg_pstrcopy(cf->pool, &kv->key, k.data, k.len) != TG_OK
        || tg_pstrcopy(cf->pool, &kv->value, v.data, v.len) != TG_OK)
    {
        return "out of memory for";
    }
    return TG_CONF_OK;
}
