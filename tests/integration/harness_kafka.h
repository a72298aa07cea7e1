/*
 * Integration test harness, Kafka side: kcat (a Kafka client that is not
 * ours) producing and reading records, and `impulse kafka` run as a
 * process of its own, a cluster that servers share or outlive.
 *
 * Like the rest of the harness, nothing here asserts: failures are said on
 * stderr and returned.
 */
#ifndef IT_HARNESS_KAFKA_H
#define IT_HARNESS_KAFKA_H

#include <sys/types.h>

#define IT_KAFKA_START_MS 10000u /* `impulse kafka` up to its address */
#define IT_KAFKA_STOP_MS 5000u   /* SIGTERM until SIGKILL */

/* The whole of `topic`, from its beginning to its end, one record a line
 * in kcat's format `fmt` (kcat -f); kcat is killed after `ms`. Returns
 * kcat's output (malloc'd, NUL-terminated; free() it), or NULL after
 * saying why. */
char *it_kcat_read(const char *bootstrap, const char *topic, const char *fmt,
                   unsigned ms);

/* Produces the "key:value" lines of `file` to `topic` with kcat, killed
 * after `ms`. Returns kcat's exit code, or -1. */
int it_kcat_produce(const char *bootstrap, const char *topic, const char *file,
                    unsigned ms);

/* The partition count of `topic` as kcat -L sees it (kcat killed after
 * `ms`), or -1. */
int it_kcat_partitions(const char *bootstrap, const char *topic, unsigned ms);

/* `impulse kafka` under test: its own process group, killed with us.
 * Zero-initialise, then it_kafka_start(). */
typedef struct it_kafka_s {
  pid_t pid;      /* 0 when not running */
  char addr[256]; /* its bootstrap address */
  char file[300]; /* --bootstrap-file */
  char out[300];  /* its stdout */
  char log[300];  /* its stderr */
} it_kafka_t;

/* Starts `impulse kafka --listen 127.0.0.1:0` with the extra flags in
 * `extra` (NULL-terminated, borrowed, may be NULL), its files in directory
 * `dir` (borrowed), and waits at most IT_KAFKA_START_MS for its address.
 * Returns 0, or -1 after saying why; call it_kafka_finish() either way. */
int it_kafka_start(it_kafka_t *kafka, const char *dir,
                   const char *const *extra);

/* SIGTERM, then SIGKILL to its process group after IT_KAFKA_STOP_MS.
 * Returns its exit code, or -1 when it had to be killed or was not
 * running. */
int it_kafka_stop(it_kafka_t *kafka);

/* Stops it when it still runs, prints its log unless `passed`, and removes
 * its files (not the directory). Safe on a cluster that did not start. */
void it_kafka_finish(it_kafka_t *kafka, int passed);

#endif
