/* Shared plumbing of the CLI: loading, errors, help, tables, JSON. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/escape.h"
#include "base/utf8.h"
#include "base/util.h"
#include "cli/cli.h"
#include "ops/ops_json.h"

int cli_config(struct cli *c)
{
        char err[1024];
        int r;

        if (c->cfg != NULL)
                return CLI_OK;
        r = pc_config_load(c->config_path, &c->cfg, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "%s\n", err);
                return CLI_ERROR;
        }
        return CLI_OK;
}

const char *cli_db(const struct cli *c)
{
        return c->db_url != NULL ? c->db_url : c->cfg->database;
}

/* <s> as one shell word into <buf>: as it is if nothing in it is special
 * to a shell, else in single quotes (a PostgreSQL URL's ? and &).  (One
 * with a quote of its own is shown as it is: the error line escapes a
 * backslash, so no quoting of it would read right.) */
static const char *shell_word(const char *s, char *buf, size_t size)
{
        if (strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:@%+=,-") == strlen(s) ||
            strchr(s, '\'') != NULL)
                return s;
        snprintf(buf, size, "'%s'", s);
        return buf;
}

void cli_store_hint(const struct cli *c, int r, char *err, size_t errsz)
{
        size_t len = strlen(err);
        char cfg[600], db[1200];

        if (r != -ENOENT || len >= errsz)
                return;
        snprintf(err + len, errsz - len,
                 "; create it with `portcullis -c %s%s%s init`, or by starting portcullisd",
                 shell_word(c->config_path, cfg, sizeof(cfg)), c->db_url != NULL ? " --db " : "",
                 c->db_url != NULL ? shell_word(c->db_url, db, sizeof(db)) : "");
}

int cli_store(struct cli *c)
{
        char err[1024];
        int r;

        if (c->store != NULL)
                return CLI_OK;
        r = cli_config(c);
        if (r != CLI_OK)
                return r;
        r = pc_store_open(cli_db(c), &c->store, err, sizeof(err));
        if (r < 0) {
                cli_store_hint(c, r, err, sizeof(err));
                cli_error("%s", err);
                return CLI_ERROR;
        }
        return CLI_OK;
}

int cli_model(struct cli *c)
{
        int r;

        if (c->model != NULL)
                return CLI_OK;
        r = cli_store(c);
        if (r != CLI_OK)
                return r;
        r = pc_model_new(c->cfg, &c->model);
        if (r < 0) {
                cli_error("Failed to create the model: %s", strerror(-r));
                return CLI_ERROR;
        }
        r = pc_store_load(c->store, c->model);
        if (r < 0) {
                cli_error("Failed to load the database: %s", pc_store_errmsg(c->store));
                return CLI_ERROR;
        }
        return CLI_OK;
}

/* Prints "portcullis: " and the message from <fmt> on stderr, escaped:
 * it may quote what was given or stored (an option, a name, a database
 * error), and that must not reach the terminal raw. */
static void error_line(const char *fmt, va_list ap)
{
        char msg[2048], safe[PC_ESCAPED_SIZE(sizeof(msg))];

        vsnprintf(msg, sizeof(msg), fmt, ap);
        pc_escape(safe, sizeof(safe), msg, PC_ESCAPE_TEXT);
        fprintf(stderr, "portcullis: %s\n", safe);
}

void cli_error(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        error_line(fmt, ap);
        va_end(ap);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        error_line(fmt, ap);
        va_end(ap);
        fprintf(stderr, "See: portcullis %s --help\n", cmd);
        return CLI_ERROR;
}

const char *cli_text(const char *text, char *buf, size_t size)
{
        pc_escape(buf, size, text != NULL ? text : "", PC_ESCAPE_TEXT);
        return buf;
}

bool cli_text_valid(const char *cmd, const char *option, const char *value, size_t size)
{
        char why[80];

        if (value == NULL)
                return true;
        if (strlen(value) >= size) {
                cli_usage_error(cmd, "%s is longer than %zu bytes", option, size - 1);
                return false;
        }
        if (pc_text_invalid(value, why, sizeof(why)) != NULL) {
                cli_usage_error(cmd, "%s %s: it is stored and shown to people, so it must be one line of "
                                "text without control characters", option, why);
                return false;
        }
        return true;
}

bool cli_wants_help(const char *name, int argc, char **argv)
{
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--") == 0)
                        break;
                if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
                        for (const struct cli_command *cmd = cli_commands; cmd->name != NULL; cmd++)
                                if (strcmp(cmd->name, name) == 0)
                                        printf("Usage: portcullis [-c FILE] [--json] %s %s\n\n%s.\n\n%s",
                                               cmd->name, cmd->usage, cmd->summary, cmd->help);
                        return true;
                }
        }
        return false;
}

json_t *cli_time_json(int64_t t)
{
        return pc_json_time(t);
}

int cli_print_json(json_t *j)
{
        if (j == NULL) {
                cli_error("Out of memory building JSON output");
                return CLI_ERROR;
        }
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(j);
        return CLI_OK;
}

bool cli_actor_valid(const char *cmd, const char *by)
{
        if (by == NULL || by[0] == '\0') {
                cli_usage_error(cmd, "--by WHO is required: every change is audited with who made it");
                return false;
        }
        if (!pc_name_valid(by)) {
                cli_usage_error(cmd, "--by '%s' is not a valid name (1-63 of a-z 0-9 . _ -)", by);
                return false;
        }
        return true;
}

bool cli_until_valid(const char *cmd, const char *s, int64_t now, int64_t *ret)
{
        int r = pc_parse_time(s, now, ret);

        if (r == -ERANGE)
                cli_usage_error(cmd, "--until '%s' is after 9999-12-31T23:59:59Z", s);
        else if (r < 0)
                cli_usage_error(cmd, "--until '%s' is not a valid time (2026-12-31, 2026-12-31T18:00:00Z or +30d)", s);
        else if (*ret <= now)
                cli_usage_error(cmd, "--until '%s' is in the past", s);
        return r == 0 && *ret > now;
}

struct cli_table {
        size_t ncols, nrows, cap;
        char **cells; /* nrows * ncols, row 0 the headers */
};

struct cli_table *cli_table_new(size_t ncols, const char *const *headers)
{
        struct cli_table *t = calloc(1, sizeof(*t));

        if (t == NULL)
                abort();
        t->ncols = ncols;
        t->cap = 16;
        t->cells = calloc(t->cap * ncols, sizeof(char *));
        if (t->cells == NULL)
                abort();
        for (size_t i = 0; i < ncols; i++)
                t->cells[i] = strdup(headers[i]);
        t->nrows = 1;
        return t;
}

void cli_table_add(struct cli_table *t, ...)
{
        va_list ap;

        if (t->nrows == t->cap) {
                t->cap *= 2;
                t->cells = realloc(t->cells, t->cap * t->ncols * sizeof(char *));
                if (t->cells == NULL)
                        abort(); /* a CLI out of memory has nothing better to do */
        }
        va_start(ap, t);
        for (size_t i = 0; i < t->ncols; i++) {
                const char *s = va_arg(ap, const char *);

                char *cell;

                /* A cell is one line: whatever a writer stored, its text
                 * cannot add a row or steer the terminal. */
                s = s != NULL ? s : "";
                cell = malloc(PC_ESCAPED_SIZE(strlen(s)));
                if (cell == NULL)
                        abort();
                pc_escape(cell, PC_ESCAPED_SIZE(strlen(s)), s, PC_ESCAPE_TEXT);
                t->cells[t->nrows * t->ncols + i] = cell;
        }
        va_end(ap);
        t->nrows++;
}

/* Display width of UTF-8 <s>: code points, not bytes. */
static size_t text_width(const char *s)
{
        size_t w = 0;

        for (; *s != '\0'; s++)
                if (((unsigned char)*s & 0xc0) != 0x80)
                        w++;
        return w;
}

void cli_table_print(struct cli_table *t)
{
        size_t width[16] = { 0 };

        for (size_t r = 0; r < t->nrows; r++)
                for (size_t i = 0; i < t->ncols && i < 16; i++) {
                        size_t w = text_width(t->cells[r * t->ncols + i]);

                        if (w > width[i])
                                width[i] = w;
                }
        for (size_t r = 0; r < t->nrows; r++) {
                for (size_t i = 0; i < t->ncols; i++) {
                        const char *cell = t->cells[r * t->ncols + i];

                        if (i + 1 == t->ncols) {
                                fputs(cell, stdout);
                                break;
                        }
                        fputs(cell, stdout);
                        for (size_t pad = text_width(cell); pad < width[i] + 2; pad++)
                                fputc(' ', stdout);
                }
                fputc('\n', stdout);
        }
}

struct cli_table *cli_table_free(struct cli_table *t)
{
        if (t == NULL)
                return NULL;
        for (size_t i = 0; i < t->nrows * t->ncols; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t);
        return NULL;
}

struct pc_ops cli_ops(struct cli *c)
{
        return (struct pc_ops){ .cfg = c->cfg, .store = c->store };
}

struct pc_ops_actor cli_ops_actor(const char *by)
{
        return (struct pc_ops_actor){ .principal = by, .role = PC_ROLE_ADMIN };
}

/* The option of the CLI that gives an operation's input <field>; NULL for
 * a positional argument. */
static const char *field_option(const char *field)
{
        static const struct {
                const char *field, *option;
        } options[] = {
                { "owner", "--owner" }, { "iface", "--iface" },   { "addresses", "--addr" }, { "mac", "--mac" },
                { "site", "--site" },   { "lang", "--lang" },     { "reason", "--reason" },  { "by", "--by" },
                { "until", "--until" }, { "ticket", "--ticket" }, { "admin_override", "--admin-override" },
                { "text", "--text" },   { "ports", "--ports" },   { "duration", "--duration" },
                { "evidence", "--evidence" }, { "note", "--note" }, { "customer", "--customer" },
                { "role", "--role" },   { "expires", "--expires" },
        };

        for (size_t i = 0; i < PC_ARRAY_SIZE(options); i++)
                if (strcmp(field, options[i].field) == 0)
                        return options[i].option;
        return NULL;
}

int cli_ops_error(const char *cmd, const struct pc_ops_error *err, const char *fmt, ...)
{
        const char *option = field_option(err->field);
        char what[512];
        va_list ap;

        if (err->code == PC_OPS_EINVAL && err->field[0] != '\0')
                return option != NULL ? cli_usage_error(cmd, "%s %s", option, err->message)
                                      : cli_usage_error(cmd, "%s", err->message);
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        cli_error("%s: %s", what, err->message);
        return CLI_ERROR;
}
