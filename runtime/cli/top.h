/*
 * `impulse top`: a terminal view of a server's functions, refreshed every
 * interval from the List and ServerInfo calls (see runtime/top.c).
 */
#ifndef IMP_TOP_H
#define IMP_TOP_H

/*
 * Runs `impulse top`; argv[0] is the command's name. `help` and
 * `common_help` (borrowed) are printed for --help and after a usage error.
 * Returns the CLI's exit status: 0 ok, 1 a call failed, 2 usage error, 3
 * the server could not be reached.
 */
int imp_top_main(int argc, char **argv, const char *help,
                 const char *common_help);

#endif
