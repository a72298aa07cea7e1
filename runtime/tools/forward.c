#include "tools/forward.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

#define FWD_BUF (64u << 10)
#define FWD_HIGH_WATER (4u << 20) /* stop reading the other side */
#define FWD_LOW_WATER (1u << 20)  /* and read again below this */

typedef struct fwd_pair_s fwd_pair_t;

/* One end of a forwarded connection. */
typedef struct fwd_end_s {
  uv_tcp_t tcp;
  fwd_pair_t *pair;
  int reading;
  int paused; /* reading stopped while the other end's writes drain */
} fwd_end_t;

struct fwd_pair_s {
  fwd_end_t end[2]; /* 0: the client, 1: the target */
  uv_connect_t connect;
  imp_fwd_t *fwd;
  int connected;
  int closing;
  int open_handles;
  imp_list_t link; /* in fwd->pairs */
};

typedef struct fwd_write_s {
  uv_write_t req;
  fwd_pair_t *pair;
  int to;     /* index of the end written to */
  char *data; /* owned */
} fwd_write_t;

static void on_pair_handle_closed(uv_handle_t *h) {
  fwd_end_t *end = h->data;
  fwd_pair_t *pair = end->pair;
  if (--pair->open_handles == 0) {
    imp_list_remove(&pair->link);
    free(pair);
  }
}

static void pair_close(fwd_pair_t *pair) {
  if (pair->closing) return;
  pair->closing = 1;
  for (int i = 0; i < 2; i++)
    uv_close((uv_handle_t *)&pair->end[i].tcp, on_pair_handle_closed);
}

static void fwd_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  buf->base = malloc(FWD_BUF);
  buf->len = buf->base ? FWD_BUF : 0;
}

static void on_fwd_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void end_read_start(fwd_end_t *end) {
  uv_read_start((uv_stream_t *)&end->tcp, fwd_alloc, on_fwd_read);
}

static void on_fwd_written(uv_write_t *req, int status) {
  fwd_write_t *w = IMP_CONTAINER_OF(req, fwd_write_t, req);
  fwd_pair_t *pair = w->pair;
  int to = w->to;
  free(w->data);
  free(w);
  if (status != 0) {
    pair_close(pair);
    return;
  }
  fwd_end_t *src = &pair->end[1 - to];
  if (!pair->closing && src->paused &&
      pair->end[to].tcp.write_queue_size < FWD_LOW_WATER) {
    src->paused = 0;
    end_read_start(src);
  }
}

static void on_fwd_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  fwd_end_t *end = s->data;
  fwd_pair_t *pair = end->pair;
  if (nread <= 0) {
    free(buf->base);
    if (nread < 0) pair_close(pair); /* EOF or error: both sides go */
    return;
  }
  int to = end == &pair->end[0] ? 1 : 0;
  fwd_write_t *w = malloc(sizeof *w);
  if (w == NULL) {
    free(buf->base);
    pair_close(pair);
    return;
  }
  w->pair = pair;
  w->to = to;
  w->data = buf->base; /* the read buffer is handed to the write */
  uv_buf_t b = uv_buf_init(buf->base, (unsigned)nread);
  if (uv_write(&w->req, (uv_stream_t *)&pair->end[to].tcp, &b, 1,
               on_fwd_written) != 0) {
    free(w->data);
    free(w);
    pair_close(pair);
    return;
  }
  if (pair->end[to].tcp.write_queue_size > FWD_HIGH_WATER) {
    end->paused = 1;
    uv_read_stop(s);
  }
}

static void on_target_connected(uv_connect_t *req, int status) {
  fwd_pair_t *pair = IMP_CONTAINER_OF(req, fwd_pair_t, connect);
  if (pair->closing) return;
  if (status != 0) {
    IMP_LOG(IMP_LOG_WARN, "kafka: cannot reach the first broker: %s",
            uv_strerror(status));
    pair_close(pair);
    return;
  }
  pair->connected = 1;
  uv_tcp_nodelay(&pair->end[1].tcp, 1);
  end_read_start(&pair->end[0]);
  end_read_start(&pair->end[1]);
}

static void on_fwd_connection(uv_stream_t *listener, int status) {
  imp_fwd_t *fwd = listener->data;
  if (status < 0 || fwd->stopping) return;
  fwd_pair_t *pair = calloc(1, sizeof *pair);
  if (pair == NULL) return;
  pair->fwd = fwd;
  imp_list_push_back(&fwd->pairs, &pair->link);
  for (int i = 0; i < 2; i++) {
    uv_tcp_init(fwd->loop, &pair->end[i].tcp);
    pair->end[i].tcp.data = &pair->end[i];
    pair->end[i].pair = pair;
    pair->open_handles++;
  }
  if (uv_accept(listener, (uv_stream_t *)&pair->end[0].tcp) != 0 ||
      uv_tcp_connect(&pair->connect, &pair->end[1].tcp,
                     (const struct sockaddr *)&fwd->target,
                     on_target_connected) != 0) {
    pair_close(pair);
    return;
  }
  uv_tcp_nodelay(&pair->end[0].tcp, 1);
}

int imp_fwd_start(imp_fwd_t *fwd, uv_loop_t *loop, const struct sockaddr *addr,
                  const struct sockaddr *target) {
  fwd->loop = loop;
  imp_list_init(&fwd->pairs);
  fwd->stopping = 0;
  memcpy(&fwd->target, target,
         target->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                       : sizeof(struct sockaddr_in));
  uv_tcp_init(loop, &fwd->listener);
  fwd->listener.data = fwd;
  fwd->listening = 1;
  int rc = uv_tcp_bind(&fwd->listener, addr, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&fwd->listener, 128, on_fwd_connection);
  if (rc != 0) {
    uv_close((uv_handle_t *)&fwd->listener, NULL);
    fwd->listening = 0;
  }
  return rc;
}

void imp_fwd_name(const imp_fwd_t *fwd, char *buf, size_t len) {
  struct sockaddr_storage name;
  int namelen = sizeof name;
  uv_tcp_getsockname(&fwd->listener, (struct sockaddr *)&name, &namelen);
  char ip[64] = "";
  if (name.ss_family == AF_INET6) {
    uv_ip6_name((struct sockaddr_in6 *)&name, ip, sizeof ip);
    snprintf(buf, len, "[%s]:%d", ip,
             ntohs(((struct sockaddr_in6 *)&name)->sin6_port));
  } else {
    uv_ip4_name((struct sockaddr_in *)&name, ip, sizeof ip);
    snprintf(buf, len, "%s:%d", ip,
             ntohs(((struct sockaddr_in *)&name)->sin_port));
  }
}

void imp_fwd_stop(imp_fwd_t *fwd) {
  if (fwd->stopping) return;
  fwd->stopping = 1;
  if (fwd->listening) uv_close((uv_handle_t *)&fwd->listener, NULL);
  fwd->listening = 0;
  imp_list_t *l;
  /* The pairs leave the list in their close callbacks, later. */
  IMP_LIST_EACH(l, &fwd->pairs) {
    pair_close(IMP_CONTAINER_OF(l, fwd_pair_t, link));
  }
}
