#ifndef IMP_CLI_H
#define IMP_CLI_H
/* Entry point of the client commands (argv[0] is the program name). */
int imp_cli_main(int argc, char **argv);
#endif
