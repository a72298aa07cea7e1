/* Commands on functions (cmd_function.c): deploy, invoke, ls, describe,
 * rm, upgrade, traffic, scale, as entries of the command table. */
#ifndef IMP_CLI_CMD_FUNCTION_H
#define IMP_CLI_CMD_FUNCTION_H

#include "cli/cli_common.h"

extern const imp_cli_cmd_t imp_cli_cmd_deploy;
extern const imp_cli_cmd_t imp_cli_cmd_invoke;
extern const imp_cli_cmd_t imp_cli_cmd_ls;
extern const imp_cli_cmd_t imp_cli_cmd_describe;
extern const imp_cli_cmd_t imp_cli_cmd_rm;
extern const imp_cli_cmd_t imp_cli_cmd_upgrade;
extern const imp_cli_cmd_t imp_cli_cmd_traffic;
extern const imp_cli_cmd_t imp_cli_cmd_scale;

#endif
