/*
 * Integration test harness, load; see harness_load.h.
 */
#include "harness_load.h"

#include <stdio.h>
#include <string.h>

#define CALL_TIMEOUT_MS 30000u

static void *caller_main(void *arg) {
  it_caller_t *c = arg;
  it_load_t *l = c->load;
  impulse_client_t *client = it_connect(l->server, 0, CALL_TIMEOUT_MS);
  if (client == NULL) {
    atomic_fetch_add(&l->failed, 1);
    return NULL;
  }
  while (!atomic_load(&l->stop)) {
    if (c->index >= atomic_load(&l->active)) {
      it_sleep_ms(5);
      continue;
    }
    impulse_response_t *r = NULL;
    int rc = it_invoke(client, l->function, l->payload, &r);
    if (rc == IMPULSE_S_OK && r->status == IMPULSE_S_OK) {
      atomic_fetch_add(&l->ok, 1);
      if (r->version < 32) atomic_fetch_or(&l->versions_seen, 1u << r->version);
    } else {
      atomic_fetch_add(&l->failed, 1);
      fprintf(stderr, "call failed: %s: %s\n", impulse_status_name(rc),
              r && r->error ? r->error : impulse_client_error(client));
    }
    impulse_response_free(r);
  }
  impulse_client_close(client);
  return NULL;
}

int it_load_start(it_load_t *load, const it_server_t *server,
                  const char *function, const char *payload, int callers,
                  int active) {
  memset(load, 0, sizeof *load);
  if (callers > IT_LOAD_MAX_CALLERS) {
    fprintf(stderr, "[harness] %d callers: at most %d\n", callers,
            IT_LOAD_MAX_CALLERS);
    return -1;
  }
  load->server = server;
  load->function = function;
  load->payload = payload;
  atomic_store(&load->active, active);
  for (int i = 0; i < callers; i++) {
    it_caller_t *c = &load->caller[i];
    c->load = load;
    c->index = i;
    if (pthread_create(&c->thread, NULL, caller_main, c) != 0) {
      fprintf(stderr, "[harness] caller %d: no thread\n", i);
      it_load_stop(load);
      return -1;
    }
    load->callers = i + 1;
  }
  return 0;
}

void it_load_stop(it_load_t *load) {
  atomic_store(&load->stop, 1);
  for (int i = 0; i < load->callers; i++)
    pthread_join(load->caller[i].thread, NULL);
  load->callers = 0;
}
