#include "base/rpc.h"

#include <stdarg.h>
#include <stdio.h>

#include "core/codec.h"

void imp_rpc_reply(imp_rpc_t *rpc, Impulse__Envelope *answer) {
  answer->id = rpc->id;
  rpc->ops->finish(rpc, answer);
}

void imp_rpc_answer(imp_rpc_t *rpc, Impulse__Envelope__BodyCase body_case,
                    void *body) {
  Impulse__Envelope answer = IMPULSE__ENVELOPE__INIT;
  if (imp_envelope_set_body(&answer, body_case, body) != 0) {
    IMP_LOG(IMP_LOG_ERROR, "answer of case %d has a body of another type",
            (int)body_case);
    imp_rpc_error(rpc, IMPULSE__ERROR_CODE__INTERNAL,
                  "the server built an answer of the wrong type");
    return;
  }
  imp_rpc_reply(rpc, &answer);
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
