/* Publishing straight to Kafka (publish_kafka.c). */
#ifndef IMP_CLI_PUBLISH_KAFKA_H
#define IMP_CLI_PUBLISH_KAFKA_H

#include <stdio.h>

#include "cli/events.h"

/*
 * Produces every event of `src` to Kafka at `bootstrap` with an idempotent
 * producer and waits for every delivery report . Returns
 * 0, or an exit status after saying why (the producer could not start, or
 * the events could not be read).
 */
int imp_cli_publish_kafka(const imp_cli_publish_opts_t *po,
                          const char *bootstrap, imp_cli_events_t *src,
                          imp_cli_tally_t *tally);

#endif
