/*
 * What a function sees of a call (ctx.c).
 */
#ifndef IMP_WORKER_CTX_H
#define IMP_WORKER_CTX_H

#include "worker/context.h"

/* The operations behind impulse_ctx_t for a call; ctx->runtime is its
 * invocation_t. */
extern const impulse_ops_t imp_wk_ops;

#endif
