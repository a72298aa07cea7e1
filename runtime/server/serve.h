#ifndef IMP_SERVE_H
#define IMP_SERVE_H
/* Exit status of `impulse serve` when its RPC address, or the HTTP address
 * given with --http, is in use (docs/operations.md, "Exit status"): the
 * one failure a supervisor or a test may cure by trying another port. */
#define IMP_SERVE_EXIT_ADDR_IN_USE 4

/* Entry point of `impulse serve ...` (argv[0] is "serve"). Returns the exit
 * status: 0 after a clean stop, 1 when it could not start or run, 2 on a
 * usage error, IMP_SERVE_EXIT_ADDR_IN_USE. */
int imp_serve_main(int argc, char **argv);
#endif
