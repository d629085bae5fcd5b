/* The `portcullis` command: shared context and helpers for subcommands. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "base/escape.h"
#include "ops/ops.h"
#include "policy/config.h"
#include "policy/model.h"
#include "store/store.h"

/* Exit codes: 0 success (explain: allowed), 1 the answer is "no" (check
 * found errors; explain: blocked or redirected), 2 an error. */
enum { CLI_OK = 0, CLI_NO = 1, CLI_ERROR = 2 };

struct cli {
        const char *config_path; /* -c, $PORTCULLIS_CONFIG, or the default */
        const char *db_url;      /* --db, overrides the config's database */
        bool json;
        struct pc_config *cfg;   /* loaded by cli_config() */
        struct pc_store *store;  /* opened by cli_store() */
        struct pc_model *model;  /* loaded by cli_model() */
};

struct cli_command {
        const char *name;
        int (*run)(struct cli *c, int argc, char **argv); /* argv[0] is the name */
        const char *usage;   /* arguments, one line */
        const char *summary; /* one line for the command list */
        const char *help;    /* paragraphs for `portcullis COMMAND --help` */
};

/* The dispatch table, terminated by a NULL name (main.c). */
extern const struct cli_command cli_commands[];

/* Loads the config once; prints the error and returns CLI_ERROR. */
int cli_config(struct cli *c);
/* The database URL in use: --db, else the config's (loaded) `database`. */
const char *cli_db(const struct cli *c);
/* Appends to the store's open error <err> (size <errsz>), if <r> says
 * there is no database, how to create it: `portcullis init` with the
 * same -c and --db. */
void cli_store_hint(const struct cli *c, int r, char *err, size_t errsz);
/* Opens the existing store (loading the config first); a missing database
 * is an error that says how to create it. */
int cli_store(struct cli *c);
/* Loads the whole model from the store. */
int cli_model(struct cli *c);

/* Prints "portcullis: " + message to stderr, with control characters
 * escaped (as cli_text). */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints <cmd>'s usage line to stderr and returns CLI_ERROR. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True if argv holds -h or --help; prints <name>'s help to stdout. */
bool cli_wants_help(const char *name, int argc, char **argv);

/* Unix time <t> as a JSON string (2026-12-31T18:00:00Z), or null for 0
 * (none). */
json_t *cli_time_json(int64_t t);

/* Prints <j> as indented JSON on stdout with a newline and frees it. */
int cli_print_json(json_t *j);

/* An aligned text table: add rows of <ncols> cells, print, free.  Cells
 * are escaped as cli_text() does. */
struct cli_table;
struct cli_table *cli_table_new(size_t ncols, const char *const *headers);
void cli_table_add(struct cli_table *t, ...); /* ncols const char * cells */
void cli_table_print(struct cli_table *t);
struct cli_table *cli_table_free(struct cli_table *t);

/* Sends one request line to portcullisd and returns its JSON reply.
 * -ENOENT/-ECONNREFUSED when the agent is not running. */
int cli_agent_request(struct cli *c, const char *request, json_t **ret);

/* Tells portcullisd that VPS <id> changed in the store.  With <out>, adds
 * "agent": {...} to it; else prints how fast it was enforced.  A missing
 * agent is only a note (the change is stored); a kernel refusal is an
 * error. */
int cli_agent_sync(struct cli *c, const char *id, json_t *out);

/* Ends a change command on VPS <id>: prints <text> (or, with --json, <out>,
 * which it takes) and tells the agent.  Returns the command's status. */
int cli_change_done(struct cli *c, const char *id, json_t *out, const char *text);

/* Parses an actor for a change: --by WHO is required, --reason TEXT
 * optional.  Prints the error and returns false if --by is missing or bad. */
bool cli_actor_valid(const char *cmd, const char *by);

/* Parses --until <s> (pc_parse_time) into a future time; prints why not
 * (not a time, after 9999, in the past) and returns false. */
bool cli_until_valid(const char *cmd, const char *s, int64_t now, int64_t *ret);

/* Bytes of a stored reason, with its NUL (the model's reason fields). */
#define CLI_REASON_SIZE 256

/* Checks free text given as <option> ("--reason") of <cmd>: shorter than
 * <size> bytes, valid UTF-8 and without control characters (a newline
 * would fake a row of `audit`, an ESC steer the terminal of whoever reads
 * it).  NULL passes: the option was not given.  Prints the error naming
 * <option> and returns false. */
bool cli_text_valid(const char *cmd, const char *option, const char *value, size_t size);

/* Stored text <text> (NULL: "") made safe for a terminal: control
 * characters and bytes that are not UTF-8 escaped (pc_escape,
 * PC_ESCAPE_TEXT), cut to fit <buf> of <size> bytes.  Returns <buf>.  For
 * every text output of what a writer stored; JSON output needs none. */
const char *cli_text(const char *text, char *buf, size_t size);

/* The operations layer over the loaded config and the open store (call
 * cli_store() first). */
struct pc_ops cli_ops(struct cli *c);

/* The actor of a change made with this command: <by> as an admin -- who
 * can run `portcullis` on the database can write the database anyway. */
struct pc_ops_actor cli_ops_actor(const char *by);

/* Prints an operation's error and returns CLI_ERROR: a bad value as a
 * usage error of <cmd>, naming the option the field came from ("--addr
 * 0.0.0.0/0 cannot be a VPS's ..."); anything else after what failed,
 * from <fmt> ("Failed to add vps-301: address ... overlaps ..."). */
int cli_ops_error(const char *cmd, const struct pc_ops_error *err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
