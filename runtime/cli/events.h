/*
 * `impulse publish` (events.c): what cmd_publish.c (options, the topic,
 * publishing through the server) and publish_kafka.c (publishing straight
 * to Kafka) share: where events come from, the options of a run and its
 * tally.
 */
#ifndef IMP_CLI_EVENTS_H
#define IMP_CLI_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "impulse/client.h"

#define IMP_CLI_PUBLISH_SHOW_ERRORS 10 /* failures printed one by one */

/* Where the events come from: -d, or lines. Zero-initialise. */
typedef struct imp_cli_events_s {
  const char *data; /* -d DATA: the one event */
  int data_done;
  FILE *in;   /* else: one event per line */
  char *line; /* getline buffer, owned */
  size_t cap;
  const char *delim; /* -K: key and value split at its first occurrence */
  size_t delim_len;
  const char *key; /* -k: key of every event (NULL = none) */
  uint64_t lineno;
} imp_cli_events_t;

/* One event. */
typedef struct imp_cli_event_s {
  const char *key; /* NULL = no key */
  size_t klen;
  const char *value;
  size_t vlen;
  uint64_t line; /* line number, 0 for -d */
} imp_cli_event_t;

/* Next event of `src`: 1 with *ev set (borrowed until the next call), 0 at
 * the end, -1 on a read error (errno set). Empty lines are skipped. */
int imp_cli_events_next(imp_cli_events_t *src, imp_cli_event_t *ev);

/* Options of a publish run. */
typedef struct imp_cli_publish_opts_s {
  const char *topic;
  int32_t partition; /* -1 = partitioner */
  const impulse_header_t *headers;
  size_t nheaders;
  size_t max_event; /* key + value + headers */
  uint32_t timeout_ms;
  const char *const *kafka_opts; /* "NAME=VALUE" */
  size_t nkafka_opts;
} imp_cli_publish_opts_t;

/* Bytes of `ev` with the headers of `po`, checked against max_event. */
size_t imp_cli_event_size(const imp_cli_publish_opts_t *po,
                          const imp_cli_event_t *ev);

/* Tally of a publish run. */
typedef struct imp_cli_tally_s {
  uint64_t sent;    /* events handed to the producer or the server */
  uint64_t refused; /* events never sent (too large, refused at once) */
  uint64_t acked;
  uint64_t failed;   /* refused or not acknowledged (for the messages) */
  int32_t partition; /* of the last acknowledged event */
  int64_t offset;
} imp_cli_tally_t;

/* Counts a failed event and, for the first IMP_CLI_PUBLISH_SHOW_ERRORS,
 * says why (naming its line when it has one). */
void imp_cli_tally_fail(imp_cli_tally_t *tally, uint64_t line, const char *fmt,
                        ...) __attribute__((format(printf, 3, 4)));

#endif
