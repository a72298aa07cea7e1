/* `impulse top` (top.c): a live view of the functions, as an entry of the
 * command table. */
#ifndef IMP_CLI_TOP_H
#define IMP_CLI_TOP_H

#include "cli/cli_common.h"

extern const imp_cli_cmd_t imp_cli_cmd_top;

#endif
