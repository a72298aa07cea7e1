/* Commands on the server (cmd_server.c): info, backup and record (with
 * its subcommand record ls), as entries of the command table. */
#ifndef IMP_CLI_CMD_SERVER_H
#define IMP_CLI_CMD_SERVER_H

#include "cli/cli_common.h"

extern const imp_cli_cmd_t imp_cli_cmd_info;
extern const imp_cli_cmd_t imp_cli_cmd_backup;
extern const imp_cli_cmd_t imp_cli_cmd_record;

#endif
