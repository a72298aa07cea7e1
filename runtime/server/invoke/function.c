#include "server/invoke/function.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

uint32_t imp_fn_setting(const imp_function_t *fn, int which, uint32_t def) {
  const Impulse__FunctionConfig *c = fn->rec->config;
  if (c == NULL) return def;
  switch (which) {
    case IMP_FN_CONCURRENCY: return c->has_concurrency ? c->concurrency : def;
    case IMP_FN_TIMEOUT_MS: return c->has_timeout_ms ? c->timeout_ms : def;
    case IMP_FN_MEMORY_MB: return c->has_memory_mb ? c->memory_mb : def;
    case IMP_FN_MIN_INSTANCES:
      return c->has_min_instances ? c->min_instances : def;
    case IMP_FN_MAX_INSTANCES:
      return c->has_max_instances ? c->max_instances : def;
  }
  return def;
}

void imp_fn_inflight(imp_function_t *fn, int delta) {
  imp_fn_scaler_t *sc = &fn->sc;
  uint64_t now = imp_now_ns();
  /* in_flight is the count before this change. */
  sc->busy_ns += (uint64_t)fn->in_flight * (now - sc->last_ns);
  sc->last_ns = now;
  if (delta > 0) {
    sc->arrivals++;
    if (fn->in_flight + 1 > sc->inflight_max)
      sc->inflight_max = fn->in_flight + 1;
  }
}

void imp_registry_init(imp_registry_t *reg, size_t max_queue) {
  imp_list_init(&reg->functions);
  reg->count = 0;
  reg->max_queue = max_queue;
}

imp_function_t *imp_registry_first(imp_registry_t *reg) {
  return imp_list_empty(&reg->functions)
             ? NULL
             : IMP_CONTAINER_OF(reg->functions.next, imp_function_t, link);
}

imp_function_t *imp_registry_next(imp_registry_t *reg, imp_function_t *fn) {
  return fn->link.next == &reg->functions
             ? NULL
             : IMP_CONTAINER_OF(fn->link.next, imp_function_t, link);
}

imp_function_t *imp_registry_find(imp_registry_t *reg, const char *name) {
  imp_function_t *fn;
  IMP_REGISTRY_EACH(fn, reg) {
    if (!fn->deleted && strcmp(fn->name, name) == 0) return fn;
  }
  return NULL;
}

imp_function_t *imp_registry_add(imp_registry_t *reg,
                                 Impulse__FunctionRecord *rec,
                                 Impulse__VersionRecord *vrec) {
  imp_function_t *fn = calloc(1, sizeof *fn);
  if (fn == NULL) {
    impulse__function_record__free_unpacked(rec, NULL);
    impulse__version_record__free_unpacked(vrec, NULL);
    return NULL;
  }
  snprintf(fn->name, sizeof fn->name, "%s", rec->name);
  fn->rec = rec;
  fn->vrec = vrec;
  imp_dispatch_init(&fn->dispatch, reg->max_queue);
  fn->dispatch.version = rec->version;
  imp_list_init(&fn->calls);
  imp_list_push_back(&reg->functions, &fn->link);
  reg->count++;
  return fn;
}

void imp_registry_remove(imp_registry_t *reg, imp_function_t *fn) {
  imp_list_remove(&fn->link);
  reg->count--;
  imp_dispatch_free(&fn->dispatch);
  impulse__function_record__free_unpacked(fn->rec, NULL);
  impulse__version_record__free_unpacked(fn->vrec, NULL);
  free(fn);
}
