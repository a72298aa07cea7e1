/*
 * Confinement of the worker before it runs a function's code (confine.c):
 * no_new_privs and a seccomp-bpf filter (libseccomp) that refuses what a
 * function has no business doing to the machine, the server or other
 * instances. docs/security.md lists the calls and what they stop.
 */
#ifndef IMP_WORKER_CONFINE_H
#define IMP_WORKER_CONFINE_H

#include <stddef.h>

/*
 * Confines the calling process for good: PR_SET_NO_NEW_PRIVS, then the
 * filter (inherited by every thread started afterwards and by children).
 * Must run before the process has a second thread. With `netns_later`,
 * unshare(CLONE_NEWNET) alone stays allowed until imp_wk_confine_final().
 * Returns 0, or -1 with the reason in err.
 */
int imp_wk_confine(int netns_later, char *err, size_t errlen);

/*
 * The second stage, at the first Load: `unshare` refused altogether (with
 * netns_later, the first stage let an empty network namespace through).
 * Filters stack, so this only narrows what the first allowed.
 */
int imp_wk_confine_final(char *err, size_t errlen);

/* 1 once imp_wk_confine() succeeded in this process. */
int imp_wk_confined(void);

#endif
