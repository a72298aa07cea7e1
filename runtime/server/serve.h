#ifndef IMP_SERVE_H
#define IMP_SERVE_H
/* Entry point of `impulse serve ...` (argv[0] is "serve"). */
int imp_serve_main(int argc, char **argv);
#endif
