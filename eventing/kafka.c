/* Placeholder until the Kafka module lands: reports that eventing is off. */
#include "kafka.h"

#include <errno.h>
#include <stdio.h>

int imp_kafka_open(uv_loop_t *loop, const imp_kafka_opts_t *opts,
                   imp_kafka_t **out, char *err, size_t errlen) {
  (void)loop; (void)opts; (void)err; (void)errlen;
  *out = NULL;
  return 0;
}
void imp_kafka_close(imp_kafka_t *kafka, int timeout_ms) { (void)kafka; (void)timeout_ms; }
const char *imp_kafka_bootstrap(const imp_kafka_t *kafka) { (void)kafka; return "none"; }
int imp_kafka_is_embedded(const imp_kafka_t *kafka) { (void)kafka; return 0; }
int imp_kafka_main(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "not built\n"); return 2; }
