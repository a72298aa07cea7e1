/* Commands on functions (cmd_function.c): deploy, invoke, ls, describe,
 * rm, upgrade, traffic, scale. Each runs with argv[0] its name and
 * returns the exit status; its _help prints its --help. */
#ifndef IMP_CLI_CMD_FUNCTION_H
#define IMP_CLI_CMD_FUNCTION_H

#include <stdio.h>

#include "cli/cli_common.h"

int imp_cli_deploy(imp_cli_t *cli, int argc, char **argv);
void imp_cli_deploy_help(FILE *out);
int imp_cli_invoke(imp_cli_t *cli, int argc, char **argv);
void imp_cli_invoke_help(FILE *out);
int imp_cli_ls(imp_cli_t *cli, int argc, char **argv);
void imp_cli_ls_help(FILE *out);
int imp_cli_describe(imp_cli_t *cli, int argc, char **argv);
void imp_cli_describe_help(FILE *out);
int imp_cli_rm(imp_cli_t *cli, int argc, char **argv);
void imp_cli_rm_help(FILE *out);
int imp_cli_upgrade(imp_cli_t *cli, int argc, char **argv);
void imp_cli_upgrade_help(FILE *out);
int imp_cli_traffic(imp_cli_t *cli, int argc, char **argv);
void imp_cli_traffic_help(FILE *out);
int imp_cli_scale(imp_cli_t *cli, int argc, char **argv);
void imp_cli_scale_help(FILE *out);

#endif
