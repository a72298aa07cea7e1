/*
 * Integration test harness, load; see harness_load.h.
 */
#include "harness_load.h"

#include <stdarg.h>
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

/* Counts a refused or wrong call in *counter and keeps the first reason;
 * a wrong one is said on stderr at once (refused ones are expected while
 * the server restarts). */
static void stream_fail(it_stream_t *st, atomic_ulong *counter, const char *fmt,
                        ...) __attribute__((format(printf, 3, 4)));
static void stream_fail(it_stream_t *st, atomic_ulong *counter, const char *fmt,
                        ...) {
  char why[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  if (counter == &st->wrong) fprintf(stderr, "stream: %s\n", why);
  if (atomic_load(&st->refused) + atomic_load(&st->wrong) == 0)
    snprintf(st->first_error, sizeof st->first_error, "%s", why);
  atomic_fetch_add(counter, 1);
}

static void *stream_main(void *arg) {
  it_stream_t *st = arg;
  impulse_client_t *c = NULL;
  unsigned long n = 0;
  while (!atomic_load(&st->stop)) {
    if (c == NULL) {
      if (impulse_client_connect(st->addr, "", &c) != IMPULSE_S_OK) {
        impulse_client_close(c);
        c = NULL;
        stream_fail(st, &st->refused, "could not connect");
        it_sleep_ms(20);
        continue;
      }
      impulse_client_set_timeout(c, st->timeout_ms);
    }
    char payload[64];
    snprintf(payload, sizeof payload, "%s %lu", st->prefix, n++);
    impulse_response_t *r = NULL;
    int rc = it_invoke(c, "echo", payload, &r);
    if (rc == IMPULSE_S_CONNECTION) {
      stream_fail(st, &st->refused, "%s: %s", payload, impulse_client_error(c));
      impulse_client_close(c);
      c = NULL;
    } else if (rc == IMPULSE_S_OK && r->status == IMPULSE_S_OK &&
               r->len == strlen(payload) &&
               memcmp(r->payload, payload, r->len) == 0) {
      atomic_fetch_add(&st->ok, 1);
    } else if (rc == IMPULSE_S_OK && r->status == IMPULSE_S_OK) {
      stream_fail(st, &st->wrong, "%s: answered '%.*s'", payload, (int)r->len,
                  (const char *)r->payload);
    } else {
      stream_fail(st, &st->wrong, "%s: %s: %s", payload,
                  impulse_status_name(rc == IMPULSE_S_OK ? r->status : rc),
                  r && r->error ? r->error : impulse_client_error(c));
    }
    impulse_response_free(r);
    if (st->pause_ms) it_sleep_ms(st->pause_ms);
  }
  impulse_client_close(c);
  return NULL;
}

int it_stream_start(it_stream_t *stream, const it_server_t *server,
                    const char *prefix, unsigned timeout_ms,
                    unsigned pause_ms) {
  memset(stream, 0, sizeof *stream);
  snprintf(stream->addr, sizeof stream->addr, "%s", server->addr);
  stream->prefix = prefix;
  stream->timeout_ms = timeout_ms;
  stream->pause_ms = pause_ms;
  if (pthread_create(&stream->thread, NULL, stream_main, stream) != 0) {
    fprintf(stderr, "[harness] stream: no thread\n");
    return -1;
  }
  stream->started = 1;
  return 0;
}

void it_stream_stop(it_stream_t *stream) {
  if (!stream->started) return;
  atomic_store(&stream->stop, 1);
  pthread_join(stream->thread, NULL);
  stream->started = 0;
}
