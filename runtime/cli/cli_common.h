/*
 * What the files of the impulse client commands share: the entry of the
 * command table (cli.c), the context of one command run, and the helpers
 * every command uses (cli_common.c): option parsing, the connect / call /
 * report sequence, input files, tables and formatting. Each command family
 * lives in its own file: cmd_function.c, cmd_publish.c (+ publish_kafka.c),
 * cmd_trigger.c, cmd_server.c and top.c. Not installed.
 *
 * Exit status of every command: 0 success, 1 the server refused the call
 * (or a local file could not be read), 2 usage error, 3 the server could
 * not be reached or the connection failed.
 */
#ifndef IMP_CLI_COMMON_H
#define IMP_CLI_COMMON_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "client/client_internal.h"
#include "core/limits.h"

#define IMP_CLI_EXIT_FAIL 1
#define IMP_CLI_EXIT_USAGE 2
#define IMP_CLI_EXIT_CONN 3

/* Every bound the CLI checks comes from core/limits.h, the limits the
 * server enforces, so the CLI refuses before sending exactly what the
 * server would refuse; the help texts print the same macros. An artifact
 * or a payload travels in one frame: it is read up to the largest frame
 * any server takes, then checked against the server's own --max-frame
 * (imp_cli_check_frame). The constants below are the CLI's alone, where
 * the server has no limit. */
#define IMP_CLI_MAX_INPUT IMP_MAX_FRAME_MAX
#define IMP_CLI_WAIT_MAX_MS 86400000u    /* publish --timeout: one day */
#define IMP_CLI_DEADLINE_SLACK_MS 10000u /* client wait beyond a deadline */

/* getopt_long values of the common options; a command numbers its own
 * from IMP_CLI_OPT_FIRST. */
enum { IMP_CLI_OPT_ADDR = 256, IMP_CLI_OPT_TOKEN, IMP_CLI_OPT_FIRST };

/* The options every command takes, last in its `struct option` list. */
/* clang-format off */
#define IMP_CLI_COMMON_OPTIONS                              \
  {"addr", required_argument, NULL, IMP_CLI_OPT_ADDR},      \
  {"token", required_argument, NULL, IMP_CLI_OPT_TOKEN},    \
  {"help", no_argument, NULL, 'h'}
/* clang-format on */

typedef struct imp_cli_s imp_cli_t;
typedef struct imp_cli_cmd_s imp_cli_cmd_t;

/* A command of the table in cli.c. */
struct imp_cli_cmd_s {
  const char *name; /* "deploy", "trigger create" */
  /* Runs the command on argv[0..argc) (argv[0] is its name, parsed with
   * getopt_long from a reset optind); returns the exit status. NULL for a
   * command made of subcommands. */
  int (*run)(imp_cli_t *cli, int argc, char **argv);
  /* Prints the command's usage and options, all but the common ones. */
  void (*help)(FILE *out);
  const char *synopsis;      /* "deploy NAME FILE" */
  const char *summary;       /* what it does, for the top-level usage */
  const imp_cli_cmd_t *subs; /* subcommands ("trigger create", ...) */
  size_t nsubs;
};

/*
 * One run of a command, owned by the dispatcher (cli.c), which frees what
 * it holds (client, resp, input, headers) after the command returns: a
 * command never cleans them up itself.
 */
struct imp_cli_s {
  const imp_cli_cmd_t *cmd; /* the command running */
  const char *addr;         /* --addr, borrowed from argv; NULL: the default */
  const char *token;        /* --token, borrowed from argv; NULL: the default */
  char what[300]; /* the call named in error messages ("describe NAME") */
  impulse_client_t *client; /* set by imp_cli_connect() */
  Impulse__Envelope *resp;  /* answer of the last imp_cli_call() */
  char *input;              /* set by imp_cli_read_input() */
  size_t input_len;
  impulse_header_t *headers; /* added by imp_cli_add_header() */
  size_t nheaders;
};

/* ---- usage and options (cli_common.c) ---------------------------------- */

/* Prints the usage of `cmd` and the common options to `out`. */
void imp_cli_usage(const imp_cli_cmd_t *cmd, FILE *out);

/* Reports a bad command line ("impulse CMD: message", then the usage) on
 * stderr; returns IMP_CLI_EXIT_USAGE. */
int imp_cli_usage_error(const imp_cli_t *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Handles the getopt_long results every command shares: the common
 * options, --help, a missing value and an unknown option. Returns -1 when
 * `opt` was a common option and parsing goes on, else the exit status to
 * return (0 after --help).
 */
int imp_cli_common_option(imp_cli_t *cli, int opt, char **argv);

/*
 * Parses the options of a command that takes only the common ones and
 * from `min` to `max` positional arguments (at optind afterwards); prints
 * `expected` as the usage error otherwise. Returns -1 to go on, else the
 * exit status.
 */
int imp_cli_options(imp_cli_t *cli, int argc, char **argv, int min, int max,
                    const char *expected);

/*
 * imp_cli_options() for a command on one NAME (`noun` says what it names,
 * "function" or "trigger"): sets *name to it and names the call
 * "COMMAND NAME" in error messages. Returns -1 to go on, else the exit
 * status.
 */
int imp_cli_options_name(imp_cli_t *cli, int argc, char **argv,
                         const char *noun, char **name);

/* Parses the decimal `s` of flag `flag` into [lo, hi]. Returns 0, or
 * IMP_CLI_EXIT_USAGE after saying that the flag takes a number in that
 * range. */
int imp_cli_parse_u32(const imp_cli_t *cli, const char *flag, const char *s,
                      uint32_t lo, uint32_t hi, uint32_t *out);

/* Appends header `arg` ("NAME=VALUE", in argv: cut at the '=') to
 * cli->headers. Returns 0 or the exit status after saying why not. */
int imp_cli_add_header(imp_cli_t *cli, char *arg);

/* ---- input ------------------------------------------------------------- */

/* Reads FILE (NULL or "-": stdin) whole, at most IMP_CLI_MAX_INPUT bytes,
 * into cli->input (never NULL on success). Returns 0 or IMP_CLI_EXIT_FAIL
 * after saying why not. */
int imp_cli_read_input(imp_cli_t *cli, const char *path);

/* After imp_cli_connect(): 0 when `len` bytes (of `label`: a file,
 * "stdin", ...) fit in one frame of the server, else IMP_CLI_EXIT_FAIL
 * after naming both sizes: nothing was sent. */
int imp_cli_check_frame(const imp_cli_t *cli, const char *label, size_t len);

/* 0 when `name` is a valid function or trigger name (imp_name_valid),
 * else the usage exit status after saying what `what` ("NAME",
 * "--function") must be. */
int imp_cli_check_name(const imp_cli_t *cli, const char *what,
                       const char *name);

/* ---- calls ------------------------------------------------------------- */

/* Sets cli->what, the call named in error messages (default: the
 * command's name). */
void imp_cli_what(imp_cli_t *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Connects with the common options. Returns 0 with cli->client set, or the
 * exit status after reporting why not. */
int imp_cli_connect(imp_cli_t *cli);

/*
 * Sends a request whose body is `body` (borrowed; a message of the type
 * case `body_case` carries) and waits for an answer with body `expect`,
 * connecting first when not yet connected. Returns 0 with cli->resp set to
 * the answer (the previous one freed), or the exit status after reporting
 * the failure.
 */
int imp_cli_call(imp_cli_t *cli, Impulse__Envelope__BodyCase body_case,
                 void *body, Impulse__Envelope__BodyCase expect);

/* Frees what `cli` holds (the dispatcher's one cleanup). */
void imp_cli_free(imp_cli_t *cli);

/* Prints a failed call's `status` on cli->client ("impulse: WHAT: STATUS:
 * message") and returns the exit status for it. */
int imp_cli_report(const imp_cli_t *cli, int status);

/* Says "impulse: WHAT: out of memory"; returns IMP_CLI_EXIT_FAIL. */
int imp_cli_nomem(const imp_cli_t *cli);

/* ---- output ------------------------------------------------------------ */

/* A text table: columns padded to their widest cell. Zero-initialise, add
 * the header row (which sets the column count) and the rows, then print
 * (which frees it). */
typedef struct imp_cli_table_s {
  size_t ncols; /* cells of the first row */
  size_t nrows, cap;
  char **rows; /* each row's cells joined by '\t', owned */
  int nomem;   /* a row could not be added */
} imp_cli_table_t;

/* Adds a row whose cells are the '\t'-separated parts of the formatted
 * text. A failure is remembered for imp_cli_table_print(). */
void imp_cli_table_add(imp_cli_table_t *table, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints the table to stdout and frees it. Returns 0, or
 * IMP_CLI_EXIT_FAIL after imp_cli_nomem() when a row was lost. */
int imp_cli_table_print(const imp_cli_t *cli, imp_cli_table_t *table);

/* How a listing prints (a static description per listing). */
typedef struct imp_cli_list_s {
  const char *none;   /* printed alone when there are no items */
  const char *header; /* the header row, cells separated by '\t' */
  /* The field the rows are sorted by, a path of field names through
   * sub-messages ("spec.name"); NULL keeps the server's order. */
  const char *sort_by;
  /* Adds the row of the item `*(T *const *)item`. */
  void (*row)(imp_cli_table_t *table, const void *item);
} imp_cli_list_t;

/* Sorts `n` messages (an array of pointers, a repeated message field) in
 * place by the string or integer field at `path` (field names joined by
 * '.' through sub-messages), ascending; a missing sub-message or string
 * sorts first. */
void imp_cli_sort(void *items, size_t n, const char *path);

/* Prints `n` items as list->header and one row each, sorted in place, or
 * list->none when there are none. `items` is an array of n pointers to
 * the items (a repeated message field of an answer). Returns 0 or
 * IMP_CLI_EXIT_FAIL as imp_cli_table_print(). */
int imp_cli_list(const imp_cli_t *cli, const imp_cli_list_t *list, void *items,
                 size_t n);

/* "2024-05-01T12:00:00Z", or "-" when unknown (0). Returns buf. */
const char *imp_cli_fmt_time(uint64_t ms, char *buf, size_t len);

/* "1d 2h 3m 4s", "2m 5s", "3.2s". Returns buf. */
const char *imp_cli_fmt_duration(uint64_t ms, char *buf, size_t len);

/* `s` unless NULL or empty, else `dflt`. */
const char *imp_cli_str_or(const char *s, const char *dflt);

/* ---- the commands ------------------------------------------------------ */

#endif
