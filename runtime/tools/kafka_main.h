/*
 * `impulse kafka`: the embedded Kafka-protocol cluster as a process of its
 * own (docs/eventing.md).
 */
#ifndef IMP_KAFKA_MAIN_H
#define IMP_KAFKA_MAIN_H

/* Entry point of `impulse kafka ...` (argv[0] is "kafka"): runs until
 * SIGINT or SIGTERM. Returns the exit code: 0, 1 when the cluster cannot
 * start, 2 on bad usage. */
int imp_kafka_main(int argc, char **argv);

#endif
