/* Commands on triggers (cmd_trigger.c): trigger create, ls, describe,
 * rm. */
#ifndef IMP_CLI_CMD_TRIGGER_H
#define IMP_CLI_CMD_TRIGGER_H

#include <stdio.h>

#include "cli/cli_common.h"

int imp_cli_trigger_create(imp_cli_t *cli, int argc, char **argv);
void imp_cli_trigger_create_help(FILE *out);
int imp_cli_trigger_ls(imp_cli_t *cli, int argc, char **argv);
void imp_cli_trigger_ls_help(FILE *out);
int imp_cli_trigger_describe(imp_cli_t *cli, int argc, char **argv);
void imp_cli_trigger_describe_help(FILE *out);
int imp_cli_trigger_rm(imp_cli_t *cli, int argc, char **argv);
void imp_cli_trigger_rm_help(FILE *out);

#endif
