/*
 * Settings of `impulse serve`, filled from its flags (serve.c) and read,
 * never written, by every part of the server.
 */
#ifndef IMP_CONFIG_H
#define IMP_CONFIG_H

#include <stddef.h>

/* Settings of `impulse serve`, filled from flags. */
typedef struct imp_config_s {
  char state_dir[512];
  char listen_host[256];
  int listen_port;
  unsigned warm_pool; /* generic workers kept ready */
  size_t max_frame;
  unsigned queue_timeout_ms; /* how long a call may wait for a slot */
  unsigned max_queue;        /* per function */
  unsigned idle_timeout_s;   /* idle instances above min are retired */
  int invoke_needs_token;
  unsigned default_concurrency;
  unsigned default_timeout_ms;
  unsigned default_memory_mb;
  unsigned default_max_instances;
  unsigned validate_timeout_ms;
  unsigned worker_grace_ms;
  unsigned drain_timeout_ms; /* on stop, how long calls may finish */
  char ready_file[512];
  const char *kafka_bootstrap; /* NULL = embedded cluster */
  const char **kafka_props;    /* --kafka-opt name=value */
  size_t nkafka_props;
  unsigned kafka_brokers;     /* embedded cluster size */
  unsigned partitions;        /* topics created on demand */
  size_t max_event_bytes;     /* largest record a trigger passes on */
  char http_host[256];        /* HTTP front end (http.c) */
  int http_port;              /* -1 = off; the bound port once listening */
  int http_explicit;          /* --http given: failing to bind is fatal */
  unsigned idempotency_ttl_s; /* how long an idempotent answer is kept */
  /* The instance sandbox (docs/security.md). */
  char sandbox[8];             /* "auto", "userns", "uid", "none" */
  unsigned sandbox_uid_base;   /* as root: instance uids from here */
  int cgroups;                 /* a cgroup per instance when possible */
  unsigned instance_tmp_mb;    /* private /tmp of an instance */
  unsigned instance_max_fds;   /* open files of an instance */
  unsigned instance_max_procs; /* processes and threads of an instance */
  size_t log_ring_bytes;       /* per function log (base/fnlog.h) */
  size_t log_rate_bytes;       /* per function log and second; 0 = no limit */
  /* The front doors' connection limits (docs/operations.md, "Connection
   * limits"); serve.c derives the global caps from the open-file limit
   * when they are not given. */
  unsigned max_conns;               /* RPC connections in all */
  unsigned max_conns_per_peer;      /* RPC connections of one peer */
  unsigned rpc_idle_ms;             /* no complete frame this long: closed */
  unsigned hello_timeout_ms;        /* no Hello this long: closed */
  unsigned http_max_conns;          /* HTTP connections in all */
  unsigned http_max_conns_per_peer; /* HTTP connections of one peer */
  unsigned http_header_timeout_ms;  /* a request's head must arrive in this */
  unsigned http_body_timeout_ms;    /* longest wait for more of a body */
} imp_config_t;

#endif
