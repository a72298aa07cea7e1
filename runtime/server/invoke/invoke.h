/*
 * The ways into the call path (call.h): a call from a client of the RPC
 * gateway, with the request it sent forwarded as it came, and the
 * imp_invoker_t interface (base/invoker.h) for the trigger broker and the
 * HTTP front end. Idempotency keys are handled here: a call whose key has
 * a stored answer gets it without running the function.
 */
#ifndef IMP_INVOKE_H
#define IMP_INVOKE_H

#include <stddef.h>
#include <stdint.h>

#include "base/invoker.h"
#include "impulse.pb-c.h"
#include "server/invoke/call.h"

/* Invokes env->invoke for a client of the RPC gateway. `env` is taken (freed
 * here); `body` is its packed bytes (borrowed), forwarded to the worker as
 * they are under another id. Answers done(arg, tag, answer) exactly once,
 * possibly before returning (unknown function, a stored idempotent answer,
 * a bad key, a full queue), with the worker's answer undecoded. */
void imp_invoke_rpc(imp_invoke_t *iv, Impulse__Envelope *env, const char *body,
                    size_t len, imp_answer_cb done, void *arg, uint64_t tag);

/* Sets iv->invoker up (its ops: the call path). */
void imp_invoke_invoker_init(imp_invoke_t *iv);

#endif
