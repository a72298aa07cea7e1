/* `impulse top` (top.c): a live view of the functions. */
#ifndef IMP_CLI_TOP_H
#define IMP_CLI_TOP_H

#include <stdio.h>

#include "cli/cli_common.h"

int imp_cli_top(imp_cli_t *cli, int argc, char **argv);
void imp_cli_top_help(FILE *out);

#endif
