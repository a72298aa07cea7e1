#include "base/rpc.h"

#include <stdarg.h>
#include <stdio.h>

#include "core/codec.h"

void imp_rpc_reply(imp_rpc_t *rpc, Impulse__Envelope *answer) {
  answer->id = rpc->id;
  rpc->ops->finish(rpc, answer);
}

void imp_rpc_error(imp_rpc_t *rpc, int code, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  Impulse__Envelope env;
  Impulse__Error err;
  imp_envelope_error(&env, &err, rpc->id, code, msg);
  rpc->ops->finish(rpc, &env);
}
