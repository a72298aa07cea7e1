/*
 * Integration test harness, Kafka side; see harness_kafka.h.
 */
#include "harness_kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

char *it_kcat_read(const char *bootstrap, const char *topic, const char *fmt,
                   unsigned ms) {
  const char *argv[] = {"kcat",      "-b", bootstrap, "-C", "-t", topic, "-o",
                        "beginning", "-e", "-q",      "-f", fmt,  NULL};
  char *out = NULL;
  int st = it_run(argv, NULL, &out, ms);
  if (st == 0 && out != NULL) return out;
  fprintf(stderr, "kcat -C %s: exit %d\n", topic, st);
  free(out);
  return NULL;
}

int it_kcat_produce(const char *bootstrap, const char *topic, const char *file,
                    unsigned ms) {
  const char *argv[] = {"kcat", "-b",  bootstrap, "-P", "-t",
                        topic,  "-K:", "-l",      file, NULL};
  int st = it_run(argv, NULL, NULL, ms);
  if (st != 0) fprintf(stderr, "kcat -P %s: exit %d\n", topic, st);
  return st;
}

int it_kcat_partitions(const char *bootstrap, const char *topic, unsigned ms) {
  const char *argv[] = {"kcat", "-b", bootstrap, "-L", "-t", topic, NULL};
  char *out = NULL, needle[300];
  int n = -1;
  if (it_run(argv, NULL, &out, ms) == 0) {
    snprintf(needle, sizeof needle, "topic \"%s\" with ", topic);
    const char *p = strstr(out, needle);
    if (p != NULL) n = atoi(p + strlen(needle));
  }
  free(out);
  return n;
}

int it_kafka_start(it_kafka_t *kafka, const char *dir,
                   const char *const *extra) {
  snprintf(kafka->file, sizeof kafka->file, "%s/kafka.addr", dir);
  snprintf(kafka->out, sizeof kafka->out, "%s/kafka.out", dir);
  snprintf(kafka->log, sizeof kafka->log, "%s/kafka.log", dir);
  const char *argv[32];
  int n = 0;
  argv[n++] = IMPULSE_BIN;
  argv[n++] = "kafka";
  argv[n++] = "--listen";
  argv[n++] = "127.0.0.1:0";
  for (size_t i = 0; extra && extra[i] && n < 28; i++) argv[n++] = extra[i];
  argv[n++] = "--bootstrap-file";
  argv[n++] = kafka->file;
  argv[n] = NULL;
  sup_spawn_t how = SUP_SPAWN_INIT;
  how.path = IMPULSE_BIN;
  how.argv = argv;
  how.out = open(kafka->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  how.err = open(kafka->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  how.own_group = 1;
  how.death_signal = SIGKILL;
  int rc = -1;
  if (how.out < 0 || how.err < 0) {
    fprintf(stderr, "impulse kafka: cannot open its output in %s: %s\n", dir,
            strerror(errno));
    goto out;
  }
  pid_t pid = sup_spawn(&how);
  if (pid < 0) {
    fprintf(stderr, "impulse kafka: fork: %s\n", strerror(-pid));
    goto out;
  }
  kafka->pid = pid;
  char *line = NULL;
  rc = sup_wait_line_file(kafka->file, pid, IT_KAFKA_START_MS, NULL, &line,
                          NULL);
  if (rc == 0) {
    line[strcspn(line, "\n")] = '\0';
    snprintf(kafka->addr, sizeof kafka->addr, "%s", line);
    free(line);
  } else {
    if (rc == -ECHILD) kafka->pid = 0;
    fprintf(stderr, "impulse kafka: no address in %s: %s\n", kafka->file,
            rc == -ECHILD ? "it exited" : strerror(-rc));
    rc = -1;
  }
out:
  if (how.out >= 0) close(how.out);
  if (how.err >= 0) close(how.err);
  return rc;
}

int it_kafka_stop(it_kafka_t *kafka) {
  if (kafka->pid <= 0) return -1;
  int st = sup_stop(kafka->pid, IT_KAFKA_STOP_MS);
  kafka->pid = 0;
  return st < 0 ? -1 : st;
}

void it_kafka_finish(it_kafka_t *kafka, int passed) {
  if (kafka->pid > 0) it_kafka_stop(kafka);
  char *log = NULL;
  size_t len = 0;
  if (!passed && kafka->log[0] && it_read_file(kafka->log, &log, &len) == 0)
    fprintf(stderr, "----- impulse kafka log -----\n%s", log);
  free(log);
  if (kafka->log[0]) unlink(kafka->log);
  if (kafka->out[0]) unlink(kafka->out);
  if (kafka->file[0]) unlink(kafka->file);
}
