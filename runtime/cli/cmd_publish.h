/* `impulse publish` (cmd_publish.c), as an entry of the command table. */
#ifndef IMP_CLI_CMD_PUBLISH_H
#define IMP_CLI_CMD_PUBLISH_H

#include "cli/cli_common.h"

extern const imp_cli_cmd_t imp_cli_cmd_publish;

#endif
