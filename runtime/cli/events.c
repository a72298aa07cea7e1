/*
 * Events of `impulse publish` and the tally of a run (events.h).
 */

#include "cli/events.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int imp_cli_events_next(imp_cli_events_t *src, imp_cli_event_t *ev) {
  ev->key = src->key;
  ev->klen = src->key ? strlen(src->key) : 0;
  if (src->data != NULL) {
    if (src->data_done) return 0;
    src->data_done = 1;
    ev->value = src->data;
    ev->vlen = strlen(src->data);
    ev->line = 0;
    return 1;
  }
  for (;;) {
    errno = 0;
    ssize_t n = getline(&src->line, &src->cap, src->in);
    if (n < 0) return ferror(src->in) ? -1 : 0;
    src->lineno++;
    size_t len = (size_t)n;
    if (len > 0 && src->line[len - 1] == '\n') len--;
    if (len > 0 && src->line[len - 1] == '\r') len--;
    if (len == 0) continue;
    ev->line = src->lineno;
    ev->value = src->line;
    ev->vlen = len;
    if (src->delim != NULL) {
      const char *d = memmem(src->line, len, src->delim, src->delim_len);
      if (d != NULL) {
        ev->key = src->line;
        ev->klen = (size_t)(d - src->line);
        ev->value = d + src->delim_len;
        ev->vlen = len - ev->klen - src->delim_len;
      }
    }
    return 1;
  }
}

size_t imp_cli_event_size(const imp_cli_publish_opts_t *po,
                          const imp_cli_event_t *ev) {
  size_t size = ev->klen + ev->vlen;
  for (size_t i = 0; i < po->nheaders; i++)
    size += strlen(po->headers[i].name) + po->headers[i].len;
  return size;
}

void imp_cli_tally_fail(imp_cli_tally_t *tally, uint64_t line, const char *fmt,
                        ...) {
  tally->failed++;
  if (tally->failed > IMP_CLI_PUBLISH_SHOW_ERRORS) return;
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (line > 0)
    fprintf(stderr, "impulse publish: event on line %llu: %s\n",
            (unsigned long long)line, msg);
  else
    fprintf(stderr, "impulse publish: %s\n", msg);
}
