/* Commands on the server (cmd_server.c): info, backup, record ls. */
#ifndef IMP_CLI_CMD_SERVER_H
#define IMP_CLI_CMD_SERVER_H

#include <stdio.h>

#include "cli/cli_common.h"

int imp_cli_info(imp_cli_t *cli, int argc, char **argv);
void imp_cli_info_help(FILE *out);
int imp_cli_backup(imp_cli_t *cli, int argc, char **argv);
void imp_cli_backup_help(FILE *out);
int imp_cli_record_ls(imp_cli_t *cli, int argc, char **argv);
void imp_cli_record_ls_help(FILE *out);

#endif
