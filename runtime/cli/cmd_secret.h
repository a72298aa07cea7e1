/* Commands on secrets (cmd_secret.c): secret, with its subcommands set,
 * ls and rm, as an entry of the command table. */
#ifndef IMP_CLI_CMD_SECRET_H
#define IMP_CLI_CMD_SECRET_H

#include "cli/cli_common.h"

extern const imp_cli_cmd_t imp_cli_cmd_secret;

#endif
