/*
 * Load generator: N TCP connections on one libuv loop, sending
 * Envelope{invoke{function, payload}} frames and decoding every answer.
 *
 * Closed loop: each connection keeps `pipeline` requests in flight; every
 * answer read is replaced by a new request, and all the requests made while
 * handling one read leave in one write (so the client batches exactly as
 * the servers do).
 *
 * Open loop: a 1 ms timer sends round(rate * elapsed) - sent requests,
 * spread round-robin over the connections, one write per connection per
 * tick, whatever the answers do. Latency is measured from the moment a
 * request is queued for the write, so a slow generator tick does not count
 * against the server; the largest tick gap is reported so a reader can see
 * whether the generator kept up.
 *
 * Both targets get the same client-side work: the floor echoes the request
 * envelope, Impulse answers with invoke_ok; either is fully unpacked,
 * checked (id, body, payload size) and freed.
 *
 * Request ids are (sequence << 32 | slot): the slot indexes the send time,
 * the sequence rejects a stale or forged id, and answers may come back in
 * any order.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "bench.h"
#include "core/codec.h"

#define LG_READ_CHUNK (64u * 1024u)
#define LG_OPEN_SLOTS \
  4096u /* open loop: most requests in flight per connection */
#define LG_CONNECT_TIMEOUT_MS 5000u
#define LG_TICK_MS 1u

typedef struct lg_s lg_t;

typedef enum lg_state_e {
  LG_CONNECTING = 0,
  LG_WARMUP,
  LG_MEASURE,
  LG_DONE
} lg_state_t;

typedef struct lconn_s {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  lg_t *lg;
  imp_buf_t in;
  imp_buf_t out;
  imp_buf_t writing; /* owned by the write in progress */
  int write_busy;
  int connected;
  int closing;
  uint32_t seq;
  uint32_t nslots;
  uint32_t nfree;
  uint64_t *slot_id;    /* id in flight per slot, 0 = free */
  uint64_t *slot_ns;    /* its send time */
  uint32_t *free_slots; /* stack of free slot numbers */
} lconn_t;

struct lg_s {
  uv_loop_t loop;
  const lg_params_t *p;
  lg_result_t *res;
  lconn_t *conns;
  unsigned connected;
  unsigned open_handles; /* connections not yet closed */
  lg_state_t state;
  int failed;
  char err[256];
  uint8_t *payload;
  int expect_body;
  uv_timer_t phase_timer; /* connect timeout, then warm-up, then window */
  uv_timer_t tick;        /* open-loop sender */
  uv_timer_t watch;       /* interruption check */
  uint64_t sched_start;   /* open loop: when the schedule began */
  uint64_t sched_sent;    /* open loop: requests due so far */
  uint64_t last_tick;
  unsigned rr;             /* open loop: next connection */
  uint64_t t_start, t_end; /* measured window */
  hist_t hist;
};

static void lg_finish(lg_t *lg);

static void lg_fail(lg_t *lg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void lg_fail(lg_t *lg, const char *fmt, ...) {
  if (!lg->failed) {
    lg->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lg->err, sizeof lg->err, fmt, ap);
    va_end(ap);
  }
  lg_finish(lg);
}

static int conn_init_slots(lconn_t *c, uint32_t n) {
  c->nslots = n;
  c->slot_id = calloc(n, sizeof *c->slot_id);
  c->slot_ns = calloc(n, sizeof *c->slot_ns);
  c->free_slots = malloc(n * sizeof *c->free_slots);
  if (c->slot_id == NULL || c->slot_ns == NULL || c->free_slots == NULL)
    return -1;
  for (uint32_t i = n; i > 0; i--) c->free_slots[c->nfree++] = i - 1;
  return 0;
}

static void conn_free_mem(lconn_t *c) {
  imp_buf_free(&c->in);
  imp_buf_free(&c->out);
  imp_buf_free(&c->writing);
  free(c->slot_id);
  free(c->slot_ns);
  free(c->free_slots);
  c->slot_id = c->slot_ns = NULL;
  c->free_slots = NULL;
}

/* Queues one request. Returns 0, 1 when no slot is free, -1 on no memory. */
static int conn_queue(lconn_t *c, uint64_t now) {
  lg_t *lg = c->lg;
  if (c->nfree == 0) return 1;
  uint32_t slot = c->free_slots[--c->nfree];
  uint64_t id = ((uint64_t)++c->seq << 32) | slot;
  if (id == 0) id = ((uint64_t)++c->seq << 32) | slot;
  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  Impulse__InvokeRequest inv = IMPULSE__INVOKE_REQUEST__INIT;
  inv.function = (char *)lg->p->function;
  inv.has_payload = 1;
  inv.payload.data = lg->payload;
  inv.payload.len = lg->p->payload;
  env.id = id;
  env.body_case = IMPULSE__ENVELOPE__BODY_INVOKE;
  env.invoke = &inv;
  if (imp_frame_append(&c->out, &env, BENCH_MAX_FRAME) != 0) {
    c->free_slots[c->nfree++] = slot;
    return -1;
  }
  c->slot_id[slot] = id;
  c->slot_ns[slot] = now;
  if (lg->state == LG_MEASURE) lg->res->sent++;
  return 0;
}

static void on_write(uv_write_t *req, int status);

static void conn_flush(lconn_t *c) {
  if (c->closing || c->write_busy || c->out.len == 0) return;
  uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n == UV_EAGAIN || n == UV_ENOSYS) n = 0;
  if (n < 0) {
    lg_fail(c->lg, "write: %s", uv_strerror(n));
    return;
  }
  imp_buf_consume(&c->out, (size_t)n);
  if (c->out.len == 0) return;
  /* The rest goes to a write request; new requests keep accumulating in
   * `out` meanwhile. */
  imp_buf_t t = c->writing;
  c->writing = c->out;
  c->out = t;
  c->out.len = 0;
  b = uv_buf_init(c->writing.data, (unsigned)c->writing.len);
  int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (rc != 0) {
    lg_fail(c->lg, "write: %s", uv_strerror(rc));
    return;
  }
  c->write_busy = 1;
}

static void on_write(uv_write_t *req, int status) {
  lconn_t *c = IMP_CONTAINER_OF(req, lconn_t, wreq);
  c->write_busy = 0;
  c->writing.len = 0;
  if (status == UV_ECANCELED) return;
  if (status < 0) {
    lg_fail(c->lg, "write: %s", uv_strerror(status));
    return;
  }
  conn_flush(c);
}

/* Handles one decoded answer (env may be NULL: undecodable). Returns 1 when
 * a slot was freed, so the closed loop sends a replacement. */
static int handle_answer(lconn_t *c, Impulse__Envelope *env, uint64_t now) {
  lg_t *lg = c->lg;
  lg_result_t *res = lg->res;
  if (env == NULL) {
    res->bad++;
    return 0;
  }
  uint32_t slot = (uint32_t)(env->id & 0xffffffffu);
  if (slot >= c->nslots || c->slot_id[slot] != env->id || env->id == 0) {
    res->bad++;
    impulse__envelope__free_unpacked(env, NULL);
    return 0;
  }
  uint64_t sent = c->slot_ns[slot];
  c->slot_id[slot] = 0;
  c->free_slots[c->nfree++] = slot;
  int ok = 0;
  if ((int)env->body_case == lg->expect_body) {
    size_t len = 0;
    if (env->body_case == IMPULSE__ENVELOPE__BODY_INVOKE_OK)
      len = env->invoke_ok->has_payload ? env->invoke_ok->payload.len : 0;
    else if (env->body_case == IMPULSE__ENVELOPE__BODY_INVOKE)
      len = env->invoke->has_payload ? env->invoke->payload.len : 0;
    if (len == lg->p->payload)
      ok = 1;
    else
      res->bad++;
  } else if (env->body_case == IMPULSE__ENVELOPE__BODY_ERROR) {
    if (res->errors++ == 0)
      snprintf(res->first_error, sizeof res->first_error, "%s: %s",
               imp_error_code_name(env->error->code),
               env->error->message ? env->error->message : "");
  } else {
    res->bad++;
  }
  impulse__envelope__free_unpacked(env, NULL);
  if (ok && lg->state == LG_MEASURE) {
    res->ok++;
    hist_record(&lg->hist, now - sent);
  }
  return 1;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  lconn_t *c = IMP_CONTAINER_OF(h, lconn_t, tcp);
  (void)suggested;
  if (imp_buf_reserve(&c->in, LG_READ_CHUNK) != 0) {
    buf->base = NULL;
    buf->len = 0;
    return;
  }
  buf->base = c->in.data + c->in.len;
  buf->len = c->in.cap - c->in.len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  lconn_t *c = IMP_CONTAINER_OF(s, lconn_t, tcp);
  lg_t *lg = c->lg;
  (void)buf;
  if (nread == 0 || c->closing) return;
  if (nread < 0) {
    if (lg->state != LG_DONE)
      lg_fail(lg, "connection lost: %s",
              nread == UV_ENOBUFS ? "out of memory" : uv_strerror((int)nread));
    return;
  }
  c->in.len += (size_t)nread;
  uint64_t now = uv_hrtime();
  size_t off = 0;
  unsigned freed = 0;
  while (c->in.len - off >= IMP_FRAME_HEADER) {
    uint32_t n = imp_frame_len(c->in.data + off);
    if (n > BENCH_MAX_FRAME) {
      lg_fail(lg, "%s", "answer larger than the frame limit");
      return;
    }
    if (c->in.len - off - IMP_FRAME_HEADER < n) break;
    Impulse__Envelope *env = impulse__envelope__unpack(
        NULL, n, (const uint8_t *)c->in.data + off + IMP_FRAME_HEADER);
    off += IMP_FRAME_HEADER + n;
    freed += (unsigned)handle_answer(c, env, now);
  }
  imp_buf_consume(&c->in, off);
  if (lg->p->rate > 0 || lg->state == LG_DONE || lg->state == LG_CONNECTING)
    return;
  for (unsigned i = 0; i < freed; i++)
    if (conn_queue(c, now) < 0) {
      lg_fail(lg, "%s", "out of memory");
      return;
    }
  conn_flush(c);
}

static void on_conn_closed(uv_handle_t *h) {
  lconn_t *c = IMP_CONTAINER_OF(h, lconn_t, tcp);
  conn_free_mem(c);
  c->lg->open_handles--;
}

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Stops everything; uv_run returns once the handles are closed. */
static void lg_finish(lg_t *lg) {
  if (lg->state == LG_DONE) return;
  lg->state = LG_DONE;
  close_handle((uv_handle_t *)&lg->phase_timer);
  close_handle((uv_handle_t *)&lg->tick);
  close_handle((uv_handle_t *)&lg->watch);
  for (unsigned i = 0; i < lg->p->connections; i++) {
    lconn_t *c = &lg->conns[i];
    if (c->closing) continue;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
  }
}

static void on_window_end(uv_timer_t *t) {
  lg_t *lg = t->data;
  lg->t_end = uv_hrtime();
  lg_finish(lg);
}

static void on_warmup_end(uv_timer_t *t) {
  lg_t *lg = t->data;
  lg->res->ok = lg->res->sent = 0;
  hist_reset(&lg->hist);
  lg->res->max_tick_gap_ns = 0;
  lg->state = LG_MEASURE;
  lg->t_start = uv_hrtime();
  uv_timer_start(&lg->phase_timer, on_window_end, lg->p->duration_ms, 0);
}

static void on_tick(uv_timer_t *t) {
  lg_t *lg = t->data;
  uint64_t now = uv_hrtime();
  if (lg->last_tick && lg->state == LG_MEASURE &&
      now - lg->last_tick > lg->res->max_tick_gap_ns)
    lg->res->max_tick_gap_ns = now - lg->last_tick;
  lg->last_tick = now;
  uint64_t due =
      (uint64_t)(lg->p->rate * (double)(now - lg->sched_start) / 1e9);
  if (due <= lg->sched_sent) return;
  uint64_t n = due - lg->sched_sent;
  lg->sched_sent = due;
  unsigned nconn = lg->p->connections;
  for (uint64_t i = 0; i < n; i++) {
    lconn_t *c = &lg->conns[lg->rr];
    lg->rr = (lg->rr + 1) % nconn;
    int rc = conn_queue(c, now);
    if (rc < 0) {
      lg_fail(lg, "%s", "out of memory");
      return;
    }
    if (rc > 0 && lg->state == LG_MEASURE) lg->res->skipped++;
  }
  for (unsigned i = 0; i < nconn; i++) conn_flush(&lg->conns[i]);
}

static void on_watch(uv_timer_t *t) {
  lg_t *lg = t->data;
  if (bench_interrupted) lg_fail(lg, "%s", "interrupted");
}

static void start_load(lg_t *lg) {
  uint64_t now = uv_hrtime();
  lg->state = LG_WARMUP;
  uv_timer_stop(&lg->phase_timer);
  uv_timer_start(&lg->phase_timer, on_warmup_end, lg->p->warmup_ms, 0);
  if (lg->p->rate > 0) {
    lg->sched_start = now;
    lg->sched_sent = 0;
    uv_timer_start(&lg->tick, on_tick, LG_TICK_MS, LG_TICK_MS);
    return;
  }
  for (unsigned i = 0; i < lg->p->connections; i++) {
    lconn_t *c = &lg->conns[i];
    for (unsigned k = 0; k < lg->p->pipeline; k++)
      if (conn_queue(c, now) < 0) {
        lg_fail(lg, "%s", "out of memory");
        return;
      }
    conn_flush(c);
  }
}

static void on_connect(uv_connect_t *req, int status) {
  lconn_t *c = IMP_CONTAINER_OF(req, lconn_t, creq);
  lg_t *lg = c->lg;
  if (status == UV_ECANCELED || lg->state == LG_DONE) return;
  if (status < 0) {
    lg_fail(lg, "connect: %s", uv_strerror(status));
    return;
  }
  c->connected = 1;
  uv_tcp_nodelay(&c->tcp, 1);
  int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rc != 0) {
    lg_fail(lg, "read: %s", uv_strerror(rc));
    return;
  }
  if (++lg->connected == lg->p->connections) start_load(lg);
}

static void on_connect_timeout(uv_timer_t *t) {
  lg_t *lg = t->data;
  lg_fail(lg, "%s", "connections not established within 5 s");
}

int lg_run(const lg_params_t *p, lg_result_t *res, char *err, size_t errlen) {
  memset(res, 0, sizeof *res);
  if (p->connections == 0 || (p->rate <= 0 && p->pipeline == 0)) {
    snprintf(err, errlen, "nothing to send");
    return -1;
  }
  lg_t *lg = calloc(1, sizeof *lg);
  if (lg == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  lg->p = p;
  lg->res = res;
  lg->expect_body = p->kind == TARGET_FLOOR ? IMPULSE__ENVELOPE__BODY_INVOKE
                                            : IMPULSE__ENVELOPE__BODY_INVOKE_OK;
  hist_reset(&lg->hist);
  int rc = -1;
  lg->payload = malloc(p->payload ? p->payload : 1);
  lg->conns = calloc(p->connections, sizeof *lg->conns);
  if (lg->payload == NULL || lg->conns == NULL) {
    snprintf(err, errlen, "out of memory");
    goto out_mem;
  }
  for (size_t i = 0; i < p->payload; i++)
    lg->payload[i] = (uint8_t)('a' + i % 26);
  uint32_t nslots = p->rate > 0 ? LG_OPEN_SLOTS : p->pipeline;
  for (unsigned i = 0; i < p->connections; i++) {
    lg->conns[i].lg = lg;
    if (conn_init_slots(&lg->conns[i], nslots) != 0) {
      snprintf(err, errlen, "out of memory");
      goto out_mem;
    }
  }
  if (uv_loop_init(&lg->loop) != 0) {
    snprintf(err, errlen, "uv_loop_init failed");
    goto out_mem;
  }
  uv_timer_init(&lg->loop, &lg->phase_timer);
  uv_timer_init(&lg->loop, &lg->tick);
  uv_timer_init(&lg->loop, &lg->watch);
  lg->phase_timer.data = lg->tick.data = lg->watch.data = lg;
  uv_timer_start(&lg->phase_timer, on_connect_timeout, LG_CONNECT_TIMEOUT_MS,
                 0);
  uv_timer_start(&lg->watch, on_watch, 50, 50);

  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", p->port, &sa);
  for (unsigned i = 0; i < p->connections; i++) {
    lconn_t *c = &lg->conns[i];
    uv_tcp_init(&lg->loop, &c->tcp);
    lg->open_handles++;
    int crc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&sa,
                             on_connect);
    if (crc != 0) {
      /* Later connections stay unopened: mark them closed too. */
      for (unsigned k = i + 1; k < p->connections; k++)
        lg->conns[k].closing = 1;
      lg_fail(lg, "connect: %s", uv_strerror(crc));
      break;
    }
  }
  uv_run(&lg->loop, UV_RUN_DEFAULT);
  /* Every handle was closed by lg_finish; a second run drains callbacks. */
  uv_run(&lg->loop, UV_RUN_NOWAIT);
  if (uv_loop_close(&lg->loop) != 0)
    fprintf(stderr, "impulse-bench: warning: load loop still had handles\n");

  if (lg->failed) {
    snprintf(err, errlen, "%s", lg->err);
    goto out_mem;
  }
  res->seconds = (double)(lg->t_end - lg->t_start) / 1e9;
  if (res->seconds <= 0) res->seconds = 1e-9;
  res->throughput = (double)res->ok / res->seconds;
  res->sent_rate = (double)res->sent / res->seconds;
  res->p50_ns = hist_quantile(&lg->hist, 0.50);
  res->p99_ns = hist_quantile(&lg->hist, 0.99);
  res->p999_ns = hist_quantile(&lg->hist, 0.999);
  res->max_ns = lg->hist.max;
  rc = 0;
out_mem:
  if (lg->conns)
    for (unsigned i = 0; i < p->connections; i++) conn_free_mem(&lg->conns[i]);
  free(lg->conns);
  free(lg->payload);
  free(lg);
  return rc;
}
