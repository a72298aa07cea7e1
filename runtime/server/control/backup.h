/* Backups (backup.c): a consistent copy of the state store. */
#ifndef IMP_BACKUP_H
#define IMP_BACKUP_H

#include "base/rpc.h"
#include "server/control/context.h"

/* Backup RPC: a checkpoint of the state store into a new state directory
 * (BackupRequest.dir), written on libuv's thread pool; answers later.
 * Takes ownership of env. */
void imp_control_backup(imp_control_t *ctl, imp_rpc_t *rpc,
                        Impulse__Envelope *env);

#endif
