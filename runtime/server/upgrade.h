/* Rolling upgrades of a function's instances (see upgrade.c). The types
 * (imp_upgrade_t, IMP_UPG_*, IMP_UPGI_*) are in server.h. */
#ifndef IMP_UPGRADE_H
#define IMP_UPGRADE_H

#include <stdint.h>

#include "impulse.pb-c.h"

struct imp_server_s;
struct imp_function_s;
struct imp_instance_s;
struct imp_upgrade_s;

/* Starts an upgrade of fn from `from` to `to` (fn->upg; the caller fills
 * from_path and to_path): loads the recorded calls to validate with. */
struct imp_upgrade_s *imp_upg_new(struct imp_server_s *server,
                                  struct imp_function_s *fn, uint32_t from,
                                  uint32_t to, unsigned step, int exact);
/* Drops fn's upgrade (its timer closes; memory freed then). */
void imp_upg_free(struct imp_function_s *fn);
/* Calls go to the serving instances of both versions by their numbers. */
void imp_upg_weights(struct imp_function_s *fn);
/* The next step, from the loop. */
void imp_upg_kick(struct imp_function_s *fn);
/* Verdicts of validations and the next step; from the controller tick. */
void imp_upg_tick(struct imp_server_s *server, struct imp_function_s *fn);
/* An instance of fn loaded a version: 1 when the upgrade takes it
 * (validation, or a reload back), 0 when it may serve. */
int imp_upg_on_ready(struct imp_server_s *server, struct imp_function_s *fn,
                     struct imp_instance_s *inst);
/* Resumes an upgrade stored in fn's record (at restore). */
void imp_upg_restore(struct imp_server_s *server, struct imp_function_s *fn);
/* describe's view: the stored record plus the progress of a running one. */
void imp_upg_info(struct imp_function_s *fn, Impulse__UpgradeInfo *ui);

#endif
