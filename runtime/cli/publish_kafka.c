/*
 * `impulse publish` straight to the server's Kafka cluster: an idempotent
 * librdkafka producer, one produce per event, then a wait for every
 * delivery report (publish.h).
 */
#include "cli/publish_kafka.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "cli/cli_common.h"

/* The producer's state, its opaque. */
typedef struct producer_s {
  imp_cli_tally_t *tally;
  int fatal;
} producer_t;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg,
                        void *opaque) {
  producer_t *p = opaque;
  uint64_t line = (uint64_t)(uintptr_t)msg->_private;
  (void)rk;
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    p->tally->acked++;
    p->tally->partition = msg->partition;
    p->tally->offset = msg->offset;
  } else {
    imp_cli_tally_fail(p->tally, line, "not acknowledged: %s",
                       rd_kafka_err2str(msg->err));
  }
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf) {
  (void)rk;
  /* Connection failures also come through the error callback. */
  if (level <= 4 && strcmp(fac, "FAIL") != 0)
    fprintf(stderr, "impulse publish: kafka: %s: %s\n", fac, buf);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
  producer_t *p = opaque;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char why[512];
    rd_kafka_fatal_error(rk, why, sizeof why);
    fprintf(stderr, "impulse publish: kafka: producer failed: %s\n", why);
    p->fatal = 1;
    return;
  }
  fprintf(stderr, "impulse publish: kafka: %s\n", reason);
}

/* The producer's configuration: our defaults, then --kafka-opt. Returns 0
 * or the exit status after saying why not. */
static int configure(const imp_cli_publish_opts_t *po, const char *bootstrap,
                     rd_kafka_conf_t *conf) {
  char why[512], mmbs[32], timeout[32];
  size_t mmb = po->max_event + 65536;
  if (mmb > 1000000000u) mmb = 1000000000u;
  if (mmb < 1000000u) mmb = 1000000u;
  snprintf(mmbs, sizeof mmbs, "%zu", mmb);
  snprintf(timeout, sizeof timeout, "%u", (unsigned)po->timeout_ms);
  /* clang-format off */
  const char *defaults[] = {"bootstrap.servers", bootstrap,
                            "client.id", "impulse-publish",
                            "enable.idempotence", "true",
                            "linger.ms", "5",
                            "message.max.bytes", mmbs,
                            "message.timeout.ms", timeout,
                            "queue.buffering.max.messages", "1000000",
                            NULL};
  /* clang-format on */
  for (size_t i = 0; defaults[i]; i += 2)
    if (rd_kafka_conf_set(conf, defaults[i], defaults[i + 1], why,
                          sizeof why) != RD_KAFKA_CONF_OK) {
      fprintf(stderr, "impulse publish: %s=%s: %s\n", defaults[i],
              defaults[i + 1], why);
      return IMP_CLI_EXIT_FAIL;
    }
  for (size_t i = 0; i < po->nkafka_opts; i++) {
    char name[256];
    const char *opt = po->kafka_opts[i], *eq = strchr(opt, '=');
    snprintf(name, sizeof name, "%.*s", (int)(eq - opt), opt);
    if (rd_kafka_conf_set(conf, name, eq + 1, why, sizeof why) !=
        RD_KAFKA_CONF_OK) {
      fprintf(stderr, "impulse publish: --kafka-opt %s: %s\n", opt, why);
      return IMP_CLI_EXIT_USAGE;
    }
  }
  return 0;
}

/* Hands one event to the producer, waiting for room when its queue is
 * full. */
static void produce(rd_kafka_t *rk, rd_kafka_topic_t *rkt,
                    const imp_cli_publish_opts_t *po, const imp_cli_event_t *ev,
                    imp_cli_tally_t *tally) {
  rd_kafka_headers_t *hdrs = NULL;
  if (po->nheaders > 0) {
    hdrs = rd_kafka_headers_new(po->nheaders);
    for (size_t i = 0; i < po->nheaders; i++)
      rd_kafka_header_add(hdrs, po->headers[i].name, -1, po->headers[i].value,
                          (ssize_t)po->headers[i].len);
  }
  rd_kafka_vu_t vu[7];
  size_t n = 0;
  vu[n].vtype = RD_KAFKA_VTYPE_RKT;
  vu[n++].u.rkt = rkt;
  vu[n].vtype = RD_KAFKA_VTYPE_PARTITION;
  vu[n++].u.i32 = po->partition < 0 ? RD_KAFKA_PARTITION_UA : po->partition;
  vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  vu[n++].u.i = RD_KAFKA_MSG_F_COPY;
  if (ev->key != NULL) {
    vu[n].vtype = RD_KAFKA_VTYPE_KEY;
    vu[n].u.mem.ptr = (void *)ev->key;
    vu[n++].u.mem.size = ev->klen;
  }
  vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
  vu[n].u.mem.ptr = (void *)ev->value;
  vu[n++].u.mem.size = ev->vlen;
  vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
  vu[n++].u.ptr = (void *)(uintptr_t)ev->line;
  if (hdrs != NULL) {
    vu[n].vtype = RD_KAFKA_VTYPE_HEADERS;
    vu[n++].u.headers = hdrs;
  }
  for (;;) {
    rd_kafka_error_t *error = rd_kafka_produceva(rk, vu, n);
    if (error == NULL) {
      tally->sent++;
      return;
    }
    rd_kafka_resp_err_t e = rd_kafka_error_code(error);
    rd_kafka_error_destroy(error);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(rk, 50); /* wait for reports to make room */
      continue;
    }
    if (hdrs != NULL) rd_kafka_headers_destroy(hdrs); /* not taken */
    tally->refused++;
    imp_cli_tally_fail(tally, ev->line, "%s", rd_kafka_err2str(e));
    return;
  }
}

int imp_cli_publish_kafka(const imp_cli_publish_opts_t *po,
                          const char *bootstrap, imp_cli_events_t *src,
                          imp_cli_tally_t *tally) {
  char why[512];
  producer_t p = {tally, 0};
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_t *rk = NULL;
  rd_kafka_topic_t *rkt = NULL;
  rd_kafka_conf_set_log_cb(conf, on_log);
  int rc = configure(po, bootstrap, conf);
  if (rc != 0) goto out;
  rc = IMP_CLI_EXIT_FAIL;
  rd_kafka_conf_set_opaque(conf, &p);
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_error_cb(conf, on_error);
  rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
  if (rk == NULL) {
    fprintf(stderr, "impulse publish: cannot create a Kafka producer: %s\n",
            why);
    goto out;
  }
  conf = NULL; /* taken by rd_kafka_new */
  rkt = rd_kafka_topic_new(rk, po->topic, NULL);
  if (rkt == NULL) {
    fprintf(stderr, "impulse publish: topic %s: %s\n", po->topic,
            rd_kafka_err2str(rd_kafka_last_error()));
    goto out;
  }

  imp_cli_event_t ev;
  int r = 0;
  while (!p.fatal && (r = imp_cli_events_next(src, &ev)) > 0) {
    size_t size = imp_cli_event_size(po, &ev);
    if (size > po->max_event) {
      tally->refused++;
      imp_cli_tally_fail(tally, ev.line,
                         "%zu bytes is above the %zu-byte limit", size,
                         po->max_event);
      continue;
    }
    produce(rk, rkt, po, &ev, tally);
    if ((tally->sent & 1023) == 0) rd_kafka_poll(rk, 0);
  }
  if (r < 0 && !p.fatal)
    fprintf(stderr, "impulse publish: reading events: %s\n", strerror(errno));
  /* Every report comes within message.timeout.ms; the slack covers the
   * last batch's linger and round trip. Wait for the reports rather than an
   * empty queue (rd_kafka_flush): the idempotent producer keeps its own
   * requests queued while the cluster is unreachable. */
  uint64_t until = imp_now_ms() + po->timeout_ms + 1000;
  while (tally->acked + tally->failed - tally->refused < tally->sent &&
         imp_now_ms() < until)
    rd_kafka_poll(rk, 100);
  if (tally->acked + tally->failed - tally->refused < tally->sent) {
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(rk, 1000);
  }
  rc = r < 0 ? IMP_CLI_EXIT_FAIL : 0;
out:
  if (rkt != NULL) rd_kafka_topic_destroy(rkt);
  if (rk != NULL) rd_kafka_destroy(rk);
  if (conf != NULL) rd_kafka_conf_destroy(conf);
  return rc;
}
