/*
 * Kafka connection of a server: an external cluster or an embedded
 * Kafka-protocol cluster (librdkafka's mock cluster, in memory), and a
 * shared idempotent producer whose delivery reports are served on the
 * libuv loop. `impulse kafka` (runtime/tools/kafka_main.c) runs the same
 * embedded cluster as a process of its own.
 *
 * Threads: librdkafka runs its own threads; everything here except the log
 * callback runs on the loop thread. A queue is hooked into the loop with
 * rd_kafka_queue_io_event_enable(): librdkafka writes to an eventfd when
 * the queue goes from empty to non-empty, a uv_poll on that eventfd wakes
 * the loop, and the owner drains the queue without blocking.
 *
 * Traits of librdkafka 2.0.2's mock cluster this module works around:
 * - its Admin API cannot create topics (the mock names controller 0, which
 *   is no broker, so CreateTopics waits for a controller until it times
 *   out): topics are created with rd_kafka_mock_topic_create() in-process,
 *   and on a mock cluster reached over the network (`impulse kafka`) by a
 *   Metadata request, which the mock answers by creating the topic with its
 *   default partition count (4);
 * - it creates topics on any Metadata request naming them, whatever
 *   allow.auto.create.topics says, so partition counts are read from a
 *   metadata request for all topics there;
 * - it keeps at most about 5 MiB per partition and silently drops older
 *   records beyond that.
 */
#include "eventing/kafka.h"

#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/common.h"
#include "core/limits.h"

#define IMP_KAFKA_DEFAULT_MAX_MESSAGE (1u << 20)
/* Room a record batch needs beyond its payload, for message.max.bytes. */
#define IMP_KAFKA_BATCH_OVERHEAD 65536u
/* Bound on each blocking metadata / admin exchange. */
#define IMP_KAFKA_OP_TIMEOUT_MS 5000
/* Delivery report polls per wake-up before yielding to the loop. */
#define IMP_KAFKA_POLL_ROUNDS 16
/* Topics remembered as existing; beyond this they are checked each time. */
#define IMP_KAFKA_TOPIC_CACHE_MAX 65536u
/* After the cluster did not answer, calls that would wait fail at once for
 * this long. */
#define IMP_KAFKA_RETRY_MS 5000
/* Prefix of the cluster id of librdkafka's mock cluster. */
#define IMP_KAFKA_MOCK_ID_PREFIX "mockCluster"

/* ---- topic set --------------------------------------------------------- */

typedef struct topic_entry_s {
  struct topic_entry_s *next;
  char name[]; /* NUL-terminated */
} topic_entry_t;

/* Chained hash set of topic names known to exist. */
typedef struct topic_set_s {
  topic_entry_t **buckets;
  size_t nbuckets; /* power of two */
  size_t count;
} topic_set_t;

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static int topic_set_has(const topic_set_t *set, const char *name) {
  if (set->nbuckets == 0) return 0;
  topic_entry_t *e = set->buckets[hash_str(name) & (set->nbuckets - 1)];
  for (; e; e = e->next)
    if (strcmp(e->name, name) == 0) return 1;
  return 0;
}

/* Adds name; a full set or a failed allocation only costs a later check. */
static void topic_set_add(topic_set_t *set, const char *name) {
  if (topic_set_has(set, name) || set->count >= IMP_KAFKA_TOPIC_CACHE_MAX)
    return;
  if (set->count >= set->nbuckets) {
    size_t n = set->nbuckets ? set->nbuckets * 2 : 64;
    topic_entry_t **b = calloc(n, sizeof *b);
    if (b == NULL) return;
    for (size_t i = 0; i < set->nbuckets; i++) {
      topic_entry_t *e = set->buckets[i], *next;
      for (; e; e = next) {
        next = e->next;
        size_t k = hash_str(e->name) & (n - 1);
        e->next = b[k];
        b[k] = e;
      }
    }
    free(set->buckets);
    set->buckets = b;
    set->nbuckets = n;
  }
  size_t len = strlen(name);
  topic_entry_t *e = malloc(sizeof *e + len + 1);
  if (e == NULL) return;
  memcpy(e->name, name, len + 1);
  size_t k = hash_str(name) & (set->nbuckets - 1);
  e->next = set->buckets[k];
  set->buckets[k] = e;
  set->count++;
}

static void topic_set_free(topic_set_t *set) {
  for (size_t i = 0; i < set->nbuckets; i++) {
    topic_entry_t *e = set->buckets[i], *next;
    for (; e; e = next) {
      next = e->next;
      free(e);
    }
  }
  free(set->buckets);
  memset(set, 0, sizeof *set);
}

/* ---- the connection ---------------------------------------------------- */

/* A record produced and not yet reported: the message's opaque. */
typedef struct pending_s {
  imp_kafka_produce_cb cb;
  void *arg;
  struct pending_s *next, *prev;
} pending_t;

struct imp_kafka_s {
  uv_loop_t *loop;
  char *bootstrap;         /* owned */
  int embedded;            /* mock cluster in this process */
  int mock;                /* 1 mock cluster, 0 not, -1 not known yet */
  uint64_t retry_after_ms; /* cluster did not answer: fail until then */
  char **props;            /* owned copies of "name=value" */
  size_t nprops;
  unsigned default_partitions;
  size_t max_message;
  rd_kafka_t *mock_rk; /* embedded: handle owning the mock cluster */
  rd_kafka_mock_cluster_t *mcluster;
  rd_kafka_t *producer;
  rd_kafka_queue_t *main_q; /* reference on the producer's main queue */
  imp_kafka_watch_t *watch; /* on main_q */
  pending_t pending;        /* sentinel: records awaiting their report */
  size_t npending;
  topic_set_t topics; /* known to exist */
  int closing;
};

struct imp_kafka_watch_s {
  uv_poll_t poll;
  int fd;                  /* eventfd librdkafka writes to */
  rd_kafka_queue_t *queue; /* borrowed */
  void (*cb)(void *arg);
  void *arg;
};

const char *imp_kafka_bootstrap(const imp_kafka_t *kafka) {
  return kafka->bootstrap;
}

int imp_kafka_is_embedded(const imp_kafka_t *kafka) {
  return kafka->embedded;
}

size_t imp_kafka_max_message(const imp_kafka_t *kafka) {
  return kafka->max_message;
}

/* librdkafka's log lines, from its threads, into ours. */
static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac,
                           const char *buf) {
  int lvl = level <= 3   ? IMP_LOG_ERROR
            : level == 4 ? IMP_LOG_WARN
            : level == 5 ? IMP_LOG_INFO
                         : IMP_LOG_DEBUG;
  /* A broker connection failure also comes through the error callback (or,
   * without one, as an ERROR log line): once is enough. */
  if (strcmp(fac, "FAIL") == 0) lvl = IMP_LOG_DEBUG;
  IMP_LOG(lvl, "kafka: %s: %s: %s", rd_kafka_name(rk), fac, buf);
}

/* Sets name=value; 0, or -1 with the reason in err. */
static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                    char *err, size_t errlen) {
  char why[256];
  if (rd_kafka_conf_set(conf, name, value, why, sizeof why) == RD_KAFKA_CONF_OK)
    return 0;
  snprintf(err, errlen, "%s=%s: %s", name, value, why);
  return -1;
}

/* Applies one "name=value" pass-through property. */
static int conf_set_prop(rd_kafka_conf_t *conf, const char *prop, char *err,
                         size_t errlen) {
  const char *eq = strchr(prop, '=');
  char name[256];
  if (eq == NULL || eq == prop || (size_t)(eq - prop) >= sizeof name) {
    snprintf(err, errlen, "kafka option '%s' is not NAME=VALUE", prop);
    return -1;
  }
  memcpy(name, prop, (size_t)(eq - prop));
  name[eq - prop] = '\0';
  return conf_set(conf, name, eq + 1, err, errlen);
}

/*
 * A configuration with our log callback, `defaults` (name, value pairs,
 * NULL-terminated), the bootstrap servers, then every pass-through property,
 * so the user's properties win over ours.
 */
static rd_kafka_conf_t *make_conf(const imp_kafka_t *kafka,
                                  const char *const *defaults, char *err,
                                  size_t errlen) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);
  if (conf_set(conf, "client.id", "impulse", err, errlen) != 0) goto fail;
  for (size_t i = 0; defaults && defaults[i]; i += 2)
    if (conf_set(conf, defaults[i], defaults[i + 1], err, errlen) != 0)
      goto fail;
  if (conf_set(conf, "bootstrap.servers", kafka->bootstrap, err, errlen) != 0)
    goto fail;
  for (size_t i = 0; i < kafka->nprops; i++)
    if (conf_set_prop(conf, kafka->props[i], err, errlen) != 0) goto fail;
  return conf;
fail:
  rd_kafka_conf_destroy(conf);
  return NULL;
}

rd_kafka_conf_t *imp_kafka_conf(const imp_kafka_t *kafka, char *err,
                                size_t errlen) {
  return make_conf(kafka, NULL, err, errlen);
}

static int map_err(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR: return 0;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE: return -EMSGSIZE;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL: return -ENOBUFS;
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__DESTROY: return IMP_ECANCELED;
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT: return -ETIMEDOUT;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART: return -ENOENT;
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED: return -EACCES;
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION: return -EINVAL;
    default: return -EIO;
  }
}

/* ---- watches ----------------------------------------------------------- */

static void watch_kick(imp_kafka_watch_t *watch) {
  uint64_t one = 1;
  ssize_t n = write(watch->fd, &one, sizeof one);
  (void)n; /* a full counter already means "wake up" */
}

static void on_watch_readable(uv_poll_t *poll, int status, int events) {
  imp_kafka_watch_t *watch = IMP_CONTAINER_OF(poll, imp_kafka_watch_t, poll);
  uint64_t v;
  /* Reset the counter before the owner drains: an event enqueued after its
   * drain finds the queue empty and writes again. */
  ssize_t n = read(watch->fd, &v, sizeof v);
  (void)n;
  (void)status;
  (void)events;
  watch->cb(watch->arg);
}

static void on_watch_closed(uv_handle_t *h) {
  imp_kafka_watch_t *watch = IMP_CONTAINER_OF(h, imp_kafka_watch_t, poll);
  close(watch->fd);
  free(watch);
}

imp_kafka_watch_t *imp_kafka_watch(uv_loop_t *loop, rd_kafka_queue_t *queue,
                                   void (*cb)(void *arg), void *arg) {
  imp_kafka_watch_t *watch = calloc(1, sizeof *watch);
  if (watch == NULL) return NULL;
  watch->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (watch->fd < 0) {
    IMP_LOG(IMP_LOG_ERROR, "kafka: eventfd: %s", strerror(errno));
    free(watch);
    return NULL;
  }
  watch->queue = queue;
  watch->cb = cb;
  watch->arg = arg;
  int rc = uv_poll_init(loop, &watch->poll, watch->fd);
  if (rc != 0) {
    IMP_LOG(IMP_LOG_ERROR, "kafka: uv_poll_init: %s", uv_strerror(rc));
    close(watch->fd);
    free(watch);
    return NULL;
  }
  rc = uv_poll_start(&watch->poll, UV_READABLE, on_watch_readable);
  if (rc != 0) {
    IMP_LOG(IMP_LOG_ERROR, "kafka: uv_poll_start: %s", uv_strerror(rc));
    uv_close((uv_handle_t *)&watch->poll, on_watch_closed);
    return NULL;
  }
  /* A watch never keeps the loop alive: its owner's other handles do. */
  uv_unref((uv_handle_t *)&watch->poll);
  static const uint64_t one = 1;
  rd_kafka_queue_io_event_enable(queue, watch->fd, &one, sizeof one);
  /* Events queued before io events were enabled wrote nothing. */
  watch_kick(watch);
  return watch;
}

void imp_kafka_unwatch(imp_kafka_watch_t *watch) {
  if (watch == NULL) return;
  rd_kafka_queue_io_event_enable(watch->queue, -1, NULL, 0);
  uv_close((uv_handle_t *)&watch->poll, on_watch_closed);
}

/* ---- producer ---------------------------------------------------------- */

static void pending_unlink(imp_kafka_t *kafka, pending_t *p) {
  p->prev->next = p->next;
  p->next->prev = p->prev;
  kafka->npending--;
}

/* Delivery report, served by rd_kafka_poll() on the loop thread. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg,
                        void *opaque) {
  imp_kafka_t *kafka = opaque;
  pending_t *p = msg->_private;
  (void)rk;
  if (p == NULL) return;
  pending_unlink(kafka, p);
  int err = map_err(msg->err);
  p->cb(p->arg, err, err ? rd_kafka_err2str(msg->err) : NULL, msg->partition,
        err ? -1 : msg->offset);
  free(p);
}

/* Errors the producer reports on its own (all brokers down, fatal
 * idempotence errors), served on the loop thread. */
static void on_producer_error(rd_kafka_t *rk, int err, const char *reason,
                              void *opaque) {
  (void)opaque;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char why[512];
    rd_kafka_fatal_error(rk, why, sizeof why);
    IMP_LOG(IMP_LOG_ERROR, "kafka: producer failed for good: %s", why);
    return;
  }
  IMP_LOG(IMP_LOG_WARN, "kafka: %s", reason);
}

static void on_producer_events(void *arg) {
  imp_kafka_t *kafka = arg;
  for (int i = 0; i < IMP_KAFKA_POLL_ROUNDS; i++)
    if (rd_kafka_poll(kafka->producer, 0) == 0) return;
  /* Reports keep coming: let the loop serve others, then carry on. */
  watch_kick(kafka->watch);
}

static int start_producer(imp_kafka_t *kafka, char *err, size_t errlen) {
  char mmb[32];
  size_t max = kafka->max_message + IMP_KAFKA_BATCH_OVERHEAD;
  if (max > 1000000000u) max = 1000000000u;
  if (max < 1000000u) max = 1000000u;
  snprintf(mmb, sizeof mmb, "%zu", max);
  /* Topics are created by us, with our partition count, before the first
   * record; a real broker must not create them with its own default. */
  /* clang-format off */
  const char *defaults[] = {
      "enable.idempotence", "true",
      "linger.ms", "2",
      "message.max.bytes", mmb,
      "message.timeout.ms", "30000", /* a Publish waits for its report */
      "queue.buffering.max.messages", "500000",
      "allow.auto.create.topics", "false",
      NULL};
  /* clang-format on */
  rd_kafka_conf_t *conf = make_conf(kafka, defaults, err, errlen);
  if (conf == NULL) return -EINVAL;
  /* A smaller message.max.bytes given with --kafka-opt lowers our limit. */
  char val[32];
  size_t vlen = sizeof val;
  if (rd_kafka_conf_get(conf, "message.max.bytes", val, &vlen) ==
      RD_KAFKA_CONF_OK) {
    unsigned long v = strtoul(val, NULL, 10);
    if (v > 1024 && v - 1024 < kafka->max_message)
      kafka->max_message = v - 1024;
  }
  rd_kafka_conf_set_opaque(conf, kafka);
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_error_cb(conf, on_producer_error);
  char why[512];
  kafka->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
  if (kafka->producer == NULL) {
    rd_kafka_conf_destroy(conf);
    snprintf(err, errlen, "cannot create the producer: %s", why);
    return -EINVAL;
  }
  kafka->main_q = rd_kafka_queue_get_main(kafka->producer);
  kafka->watch =
      imp_kafka_watch(kafka->loop, kafka->main_q, on_producer_events, kafka);
  if (kafka->watch == NULL) {
    snprintf(err, errlen, "cannot watch the producer's queue");
    return -ENOMEM;
  }
  return 0;
}

int imp_kafka_produce(imp_kafka_t *kafka, const char *topic, int32_t partition,
                      const void *key, size_t klen, const void *value,
                      size_t vlen, Impulse__Header *const *headers,
                      size_t nheaders, imp_kafka_produce_cb cb, void *arg) {
  if (kafka->closing) return -ESHUTDOWN;
  size_t size = klen + vlen;
  for (size_t i = 0; i < nheaders; i++)
    size += strlen(headers[i]->name) + headers[i]->value.len;
  if (size > kafka->max_message || size < vlen) return -EMSGSIZE;
  if (!topic_set_has(&kafka->topics, topic)) {
    char why[256];
    int rc = imp_kafka_ensure_topic(kafka, topic, 0, why, sizeof why);
    if (rc != 0) {
      IMP_LOG(IMP_LOG_WARN, "kafka: topic %s: %s", topic, why);
      return rc;
    }
  }
  pending_t *p = malloc(sizeof *p);
  if (p == NULL) return -ENOMEM;
  p->cb = cb;
  p->arg = arg;
  rd_kafka_headers_t *hdrs = NULL;
  if (nheaders > 0) {
    hdrs = rd_kafka_headers_new(nheaders);
    for (size_t i = 0; i < nheaders; i++)
      rd_kafka_header_add(hdrs, headers[i]->name, -1,
                          headers[i]->has_value ? headers[i]->value.data : NULL,
                          headers[i]->has_value ? headers[i]->value.len : 0);
  }
  rd_kafka_vu_t vu[7];
  size_t n = 0;
  vu[n].vtype = RD_KAFKA_VTYPE_TOPIC;
  vu[n++].u.cstr = topic;
  vu[n].vtype = RD_KAFKA_VTYPE_PARTITION;
  vu[n++].u.i32 = partition < 0 ? RD_KAFKA_PARTITION_UA : partition;
  vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  vu[n++].u.i = RD_KAFKA_MSG_F_COPY;
  if (key != NULL) {
    vu[n].vtype = RD_KAFKA_VTYPE_KEY;
    vu[n].u.mem.ptr = (void *)key;
    vu[n++].u.mem.size = klen;
  }
  vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
  vu[n].u.mem.ptr = (void *)value;
  vu[n++].u.mem.size = vlen;
  vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
  vu[n++].u.ptr = p;
  if (hdrs != NULL) {
    vu[n].vtype = RD_KAFKA_VTYPE_HEADERS;
    vu[n++].u.headers = hdrs;
  }
  rd_kafka_error_t *error = rd_kafka_produceva(kafka->producer, vu, n);
  if (error != NULL) {
    int rc = map_err(rd_kafka_error_code(error));
    rd_kafka_error_destroy(error);
    if (hdrs != NULL) rd_kafka_headers_destroy(hdrs); /* not taken */
    free(p);
    return rc;
  }
  p->next = &kafka->pending;
  p->prev = kafka->pending.prev;
  kafka->pending.prev->next = p;
  kafka->pending.prev = p;
  kafka->npending++;
  return 0;
}

/* ---- topics ------------------------------------------------------------ */

/* Whether the external cluster is librdkafka's mock (`impulse kafka`),
 * asked once: 1, 0, or -ETIMEDOUT while the cluster does not answer (then
 * for IMP_KAFKA_RETRY_MS every call fails at once, so that requests for
 * new topics do not each block the loop while the cluster is down). */
static int mock_check(imp_kafka_t *kafka) {
  if (kafka->mock >= 0) return kafka->mock;
  if (imp_now_ms() < kafka->retry_after_ms) return -ETIMEDOUT;
  char *id = rd_kafka_clusterid(kafka->producer, IMP_KAFKA_OP_TIMEOUT_MS);
  if (id == NULL) {
    kafka->retry_after_ms = imp_now_ms() + IMP_KAFKA_RETRY_MS;
    IMP_LOG(IMP_LOG_WARN, "kafka: no answer from %s within %d ms",
            kafka->bootstrap, IMP_KAFKA_OP_TIMEOUT_MS);
    return -ETIMEDOUT;
  }
  kafka->mock = strncmp(id, IMP_KAFKA_MOCK_ID_PREFIX,
                        strlen(IMP_KAFKA_MOCK_ID_PREFIX)) == 0;
  rd_kafka_mem_free(kafka->producer, id);
  if (kafka->mock)
    IMP_LOG(IMP_LOG_INFO,
            "kafka: %s is an embedded (mock) cluster: topics it does not "
            "have are created with its default of 4 partitions",
            kafka->bootstrap);
  return kafka->mock;
}

/*
 * Partition count of `topic` from a metadata request: for every topic when
 * `all` (no side effects on any cluster), else for this topic only (a mock
 * cluster creates it). Returns the count, -ENOENT, or another error with the
 * reason in err.
 */
static int metadata_partitions(imp_kafka_t *kafka, const char *topic, int all,
                               int timeout_ms, char *err, size_t errlen) {
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_topic_t *rkt = NULL;
  if (!all) {
    rkt = rd_kafka_topic_new(kafka->producer, topic, NULL);
    if (rkt == NULL) {
      snprintf(err, errlen, "%s", rd_kafka_err2str(rd_kafka_last_error()));
      return map_err(rd_kafka_last_error());
    }
  }
  rd_kafka_resp_err_t e =
      rd_kafka_metadata(kafka->producer, all, rkt, &md, timeout_ms);
  if (rkt != NULL) rd_kafka_topic_destroy(rkt);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    snprintf(err, errlen, "metadata from %s: %s", kafka->bootstrap,
             rd_kafka_err2str(e));
    return map_err(e) == -ENOENT ? -EIO : map_err(e);
  }
  int rc = -ENOENT;
  snprintf(err, errlen, "topic %s does not exist", topic);
  for (int i = 0; i < md->topic_cnt; i++) {
    const struct rd_kafka_metadata_topic *t = &md->topics[i];
    if (strcmp(t->topic, topic) != 0) continue;
    if (t->err == RD_KAFKA_RESP_ERR_NO_ERROR && t->partition_cnt > 0) {
      rc = t->partition_cnt;
    } else if (t->err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
               t->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      snprintf(err, errlen, "topic %s: %s", topic, rd_kafka_err2str(t->err));
      rc = map_err(t->err) == -ENOENT ? -ENOENT : -EIO;
    }
    break;
  }
  rd_kafka_metadata_destroy(md);
  return rc;
}

/* CreateTopics through the Admin API, bounded. */
static int admin_create(imp_kafka_t *kafka, const char *topic, int partitions,
                        char *err, size_t errlen) {
  char why[512];
  rd_kafka_NewTopic_t *nt =
      rd_kafka_NewTopic_new(topic, partitions, -1, why, sizeof why);
  if (nt == NULL) {
    snprintf(err, errlen, "%s", why);
    return -EINVAL;
  }
  rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(
      kafka->producer, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_request_timeout(opt, IMP_KAFKA_OP_TIMEOUT_MS, why,
                                            sizeof why);
  rd_kafka_AdminOptions_set_operation_timeout(
      opt, IMP_KAFKA_OP_TIMEOUT_MS - 1000, why, sizeof why);
  rd_kafka_queue_t *q = rd_kafka_queue_new(kafka->producer);
  rd_kafka_CreateTopics(kafka->producer, &nt, 1, opt, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, IMP_KAFKA_OP_TIMEOUT_MS + 2000);
  int rc = 0;
  if (ev == NULL) {
    snprintf(err, errlen, "no answer to CreateTopics from %s",
             kafka->bootstrap);
    rc = -ETIMEDOUT;
  } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    snprintf(err, errlen, "cannot create topic %s: %s", topic,
             rd_kafka_event_error_string(ev));
    rc = map_err(rd_kafka_event_error(ev));
  } else {
    const rd_kafka_CreateTopics_result_t *res =
        rd_kafka_event_CreateTopics_result(ev);
    size_t cnt = 0;
    const rd_kafka_topic_result_t **tr =
        res ? rd_kafka_CreateTopics_result_topics(res, &cnt) : NULL;
    for (size_t i = 0; i < cnt; i++) {
      rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR ||
          e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        continue;
      const char *msg = rd_kafka_topic_result_error_string(tr[i]);
      snprintf(err, errlen, "cannot create topic %s: %s", topic,
               msg && *msg ? msg : rd_kafka_err2str(e));
      rc = map_err(e) == -EIO ? -EIO : map_err(e);
    }
  }
  if (ev != NULL) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_AdminOptions_destroy(opt);
  rd_kafka_NewTopic_destroy(nt);
  return rc;
}

int imp_kafka_ensure_topic(imp_kafka_t *kafka, const char *topic,
                           int partitions, char *err, size_t errlen) {
  int rc = imp_topic_valid(topic, err, errlen);
  if (rc != 0) return rc;
  if (topic_set_has(&kafka->topics, topic)) return 0;
  if (partitions <= 0) partitions = (int)kafka->default_partitions;
  if (partitions > IMP_KAFKA_MAX_PARTITIONS) {
    snprintf(err, errlen, "%d partitions is above the limit of %d", partitions,
             IMP_KAFKA_MAX_PARTITIONS);
    return -EINVAL;
  }
  if (kafka->embedded) {
    rd_kafka_resp_err_t e =
        rd_kafka_mock_topic_create(kafka->mcluster, topic, partitions, 1);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR &&
        e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      snprintf(err, errlen, "cannot create topic %s: %s", topic,
               rd_kafka_err2str(e));
      return map_err(e);
    }
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
      IMP_LOG(IMP_LOG_INFO, "kafka: created topic %s (%d partitions)", topic,
              partitions);
  } else if ((rc = mock_check(kafka)) < 0) {
    snprintf(err, errlen, "no answer from the Kafka cluster at %s",
             kafka->bootstrap);
    return rc;
  } else if (rc == 1) {
    /* Naming the topic in a Metadata request makes the mock create it. */
    rc = metadata_partitions(kafka, topic, 0, IMP_KAFKA_OP_TIMEOUT_MS, err,
                             errlen);
    if (rc < 0) return rc;
  } else {
    rc = metadata_partitions(kafka, topic, 0, IMP_KAFKA_OP_TIMEOUT_MS, err,
                             errlen);
    if (rc == -ENOENT) {
      rc = admin_create(kafka, topic, partitions, err, errlen);
      if (rc != 0) return rc;
      IMP_LOG(IMP_LOG_INFO, "kafka: created topic %s (%d partitions)", topic,
              partitions);
    } else if (rc < 0) {
      return rc;
    }
  }
  topic_set_add(&kafka->topics, topic);
  return 0;
}

int imp_kafka_is_mock(imp_kafka_t *kafka) {
  return kafka->embedded || mock_check(kafka) == 1;
}

size_t imp_kafka_in_flight(const imp_kafka_t *kafka) {
  return kafka->npending;
}

int imp_kafka_partition_count(imp_kafka_t *kafka, const char *topic,
                              int timeout_ms) {
  char err[256];
  if (imp_topic_valid(topic, err, sizeof err) != 0) return -EINVAL;
  int all = kafka->embedded || mock_check(kafka) == 1;
  return metadata_partitions(
      kafka, topic, all, timeout_ms > 0 ? timeout_ms : IMP_KAFKA_OP_TIMEOUT_MS,
      err, sizeof err);
}

/* ---- open / close ------------------------------------------------------ */

int imp_kafka_mock_start(unsigned brokers, rd_kafka_t **rkp,
                         rd_kafka_mock_cluster_t **mcp, char *err,
                         size_t errlen) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  char why[512];
  rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);
  /* This handle never connects anywhere: keep its "no bootstrap.servers"
   * warning out of the log, but not the mock brokers' errors. */
  if (rd_kafka_conf_set(conf, "log_level", "3", why, sizeof why) !=
          RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "client.id", "impulse-embedded-kafka", why,
                        sizeof why) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    snprintf(err, errlen, "%s", why);
    return -EINVAL;
  }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
  if (rk == NULL) {
    rd_kafka_conf_destroy(conf);
    snprintf(err, errlen, "cannot create the embedded cluster's handle: %s",
             why);
    return -EINVAL;
  }
  rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, (int)brokers);
  if (mc == NULL) {
    rd_kafka_destroy(rk);
    snprintf(err, errlen, "cannot start the embedded cluster (%u brokers)",
             brokers);
    return -EIO;
  }
  *rkp = rk;
  *mcp = mc;
  return 0;
}

int imp_kafka_open(uv_loop_t *loop, const imp_kafka_opts_t *opts,
                   imp_kafka_t **out, char *err, size_t errlen) {
  int rc;
  *out = NULL;
  imp_kafka_t *kafka = calloc(1, sizeof *kafka);
  if (kafka == NULL) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  kafka->loop = loop;
  kafka->pending.next = kafka->pending.prev = &kafka->pending;
  kafka->default_partitions = opts->default_partitions
                                  ? opts->default_partitions
                                  : IMP_KAFKA_DEFAULT_PARTITIONS;
  kafka->max_message =
      opts->max_message ? opts->max_message : IMP_KAFKA_DEFAULT_MAX_MESSAGE;
  if (opts->nprops > 0) {
    kafka->props = calloc(opts->nprops, sizeof *kafka->props);
    if (kafka->props == NULL) goto nomem;
    for (size_t i = 0; i < opts->nprops; i++) {
      if ((kafka->props[i] = strdup(opts->props[i])) == NULL) goto nomem;
      kafka->nprops++;
    }
  }
  if (opts->bootstrap != NULL && opts->bootstrap[0] != '\0') {
    kafka->mock = -1;
    kafka->bootstrap = strdup(opts->bootstrap);
    if (kafka->bootstrap == NULL) goto nomem;
  } else {
    unsigned brokers = opts->embedded_brokers ? opts->embedded_brokers
                                              : IMP_KAFKA_DEFAULT_BROKERS;
    kafka->embedded = kafka->mock = 1;
    rc = imp_kafka_mock_start(brokers, &kafka->mock_rk, &kafka->mcluster, err,
                              errlen);
    if (rc != 0) goto fail;
    kafka->bootstrap =
        strdup(rd_kafka_mock_cluster_bootstraps(kafka->mcluster));
    if (kafka->bootstrap == NULL) goto nomem;
  }
  rc = start_producer(kafka, err, errlen);
  if (rc != 0) goto fail;
  *out = kafka;
  return 0;
nomem:
  snprintf(err, errlen, "out of memory");
  rc = -ENOMEM;
fail:
  imp_kafka_close(kafka, 0);
  return rc;
}

/* Polls the producer until every record was reported or `ms` passed. */
static void serve_reports(imp_kafka_t *kafka, int ms) {
  uint64_t until = imp_now_ms() + (uint64_t)(ms > 0 ? ms : 0);
  rd_kafka_poll(kafka->producer, 0);
  while (kafka->npending > 0) {
    uint64_t now = imp_now_ms();
    if (now >= until) break;
    rd_kafka_poll(kafka->producer, until - now > 50 ? 50 : (int)(until - now));
  }
}

void imp_kafka_close(imp_kafka_t *kafka, int timeout_ms) {
  if (kafka == NULL) return;
  kafka->closing = 1;
  if (kafka->producer != NULL) {
    /* Serves delivery reports (callbacks run here) until all are in or the
     * time is up; what is left is purged and reported as cancelled. Waits
     * for the reports, not for an empty queue (rd_kafka_flush): the
     * idempotent producer keeps its own requests queued while the cluster
     * does not answer. */
    serve_reports(kafka, timeout_ms);
    if (kafka->npending > 0) {
      IMP_LOG(IMP_LOG_WARN,
              "kafka: %zu records not acknowledged within %d ms are dropped",
              kafka->npending, timeout_ms);
      rd_kafka_purge(kafka->producer,
                     RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      serve_reports(kafka, 500);
    }
  }
  imp_kafka_unwatch(kafka->watch);
  if (kafka->main_q != NULL) rd_kafka_queue_destroy(kafka->main_q);
  if (kafka->producer != NULL) rd_kafka_destroy(kafka->producer);
  /* Whatever was never reported still gets its one callback. */
  while (kafka->pending.next != &kafka->pending) {
    pending_t *p = kafka->pending.next;
    pending_unlink(kafka, p);
    p->cb(p->arg, IMP_ECANCELED, "the Kafka connection was closed", -1, -1);
    free(p);
  }
  if (kafka->mcluster != NULL) rd_kafka_mock_cluster_destroy(kafka->mcluster);
  if (kafka->mock_rk != NULL) rd_kafka_destroy(kafka->mock_rk);
  for (size_t i = 0; i < kafka->nprops; i++) free(kafka->props[i]);
  free(kafka->props);
  topic_set_free(&kafka->topics);
  free(kafka->bootstrap);
  free(kafka);
}
