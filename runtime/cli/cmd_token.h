/* Commands on scoped tokens (cmd_token.c): token, with its subcommands
 * create, ls and revoke, as an entry of the command table. */
#ifndef IMP_CLI_CMD_TOKEN_H
#define IMP_CLI_CMD_TOKEN_H

#include "cli/cli_common.h"

extern const imp_cli_cmd_t imp_cli_cmd_token;

#endif
