/* `impulse publish` (cmd_publish.c). */
#ifndef IMP_CLI_CMD_PUBLISH_H
#define IMP_CLI_CMD_PUBLISH_H

#include <stdio.h>

#include "cli/cli_common.h"

int imp_cli_publish(imp_cli_t *cli, int argc, char **argv);
void imp_cli_publish_help(FILE *out);

#endif
