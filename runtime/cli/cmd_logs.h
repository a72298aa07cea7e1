/* `impulse logs` (cmd_logs.c): what a function's instances wrote. */
#ifndef IMP_CLI_CMD_LOGS_H
#define IMP_CLI_CMD_LOGS_H

#include "cli/cli_common.h"

extern const imp_cli_cmd_t imp_cli_cmd_logs;

#endif
