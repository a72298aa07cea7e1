/* Commands on triggers (cmd_trigger.c): trigger, with its subcommands
 * create, ls, describe and rm, as an entry of the command table. */
#ifndef IMP_CLI_CMD_TRIGGER_H
#define IMP_CLI_CMD_TRIGGER_H

#include "cli/cli_common.h"

extern const imp_cli_cmd_t imp_cli_cmd_trigger;

#endif
