/*
 * CloudEvents (v1.0) attributes as Impulse carries them, in one place for
 * both sides of a topic: the HTTP front end turns a request into a Kafka
 * record (structured mode: a JSON event; binary mode: `ce-` HTTP headers),
 * and the trigger broker turns a record into an invocation with the
 * attributes a function sees, filling in those the record lacks, and
 * stamps replies. On a Kafka record every attribute is a header named
 * `ce_<attribute>` (the Kafka protocol binding), except datacontenttype,
 * which is `content-type`.
 *
 * Pure functions, no I/O, unit-tested in tests/eventing/test_cloudevents.c.
 */
#ifndef IMP_CLOUDEVENTS_H
#define IMP_CLOUDEVENTS_H

#include <stddef.h>
#include <stdint.h>

#define IMP_CE_VERSION "1.0"      /* the specversion written */
#define IMP_CE_KAFKA_PREFIX "ce_" /* attribute headers of a Kafka record */
#define IMP_CE_HTTP_PREFIX "ce-"  /* attribute headers of an HTTP request */
#define IMP_CE_MEDIA_TYPE "application/cloudevents+json" /* structured */

/* Header names of the attributes the broker reads and writes. */
#define IMP_CE_H_ID IMP_CE_KAFKA_PREFIX "id"
#define IMP_CE_H_SOURCE IMP_CE_KAFKA_PREFIX "source"
#define IMP_CE_H_TYPE IMP_CE_KAFKA_PREFIX "type"
#define IMP_CE_H_TIME IMP_CE_KAFKA_PREFIX "time"
#define IMP_CE_H_SPECVERSION IMP_CE_KAFKA_PREFIX "specversion"

/* The type of an event made from a Kafka record, and of a function's
 * reply to one. */
#define IMP_CE_TYPE_RECORD "dev.impulse.kafka.record"
#define IMP_CE_TYPE_REPLY "dev.impulse.reply"

/* Longest attribute name accepted from a structured-mode event, and the
 * room its header name needs (prefix and NUL included). */
#define IMP_CE_ATTR_MAX 64
#define IMP_CE_HEADER_MAX (sizeof IMP_CE_KAFKA_PREFIX + IMP_CE_ATTR_MAX)

/* Room imp_ce_time() needs: "2006-01-02T15:04:05.000Z" and a NUL. */
#define IMP_CE_TIME_MAX 32

/* Room imp_ce_record_id() needs for any topic name (at most 249
 * characters), partition (int32) and offset (int64). */
#define IMP_CE_ID_MAX 300

/* Attributes an event must have (structured mode checks them). */
#define IMP_CE_NREQUIRED 4
extern const char *const imp_ce_required[IMP_CE_NREQUIRED];

/* Bits of imp_ce_header_attr(): the attributes the broker fills in for a
 * record that does not carry them itself. */
#define IMP_CE_ID 1u
#define IMP_CE_SOURCE 2u
#define IMP_CE_TYPE 4u
#define IMP_CE_TIME 8u
#define IMP_CE_SPECVERSION 16u

/* Which of those attributes the Kafka header `name` (NUL-terminated)
 * carries: one IMP_CE_* bit, or 0 for any other header. */
unsigned imp_ce_header_attr(const char *name);

/* 1 when name[0..len) is a valid attribute name (1 to IMP_CE_ATTR_MAX
 * lower-case letters and digits), else 0. */
int imp_ce_attr_valid(const char *name, size_t len);

/* Writes the Kafka header name of attribute attr[0..len) into buf (room
 * for buflen bytes, NUL-terminated): "ce_<attr>", or "content-type" for
 * datacontenttype. Returns its length, or 0 when buf is too small. */
size_t imp_ce_attr_header(const char *attr, size_t len, char *buf,
                          size_t buflen);

/* For an HTTP header name[0..len) of the binary mode, `ce-<attr>` in any
 * case: the offset of <attr> in name (its header on the record is
 * IMP_CE_KAFKA_PREFIX and <attr> in lower case). 0 for any other header,
 * and for a bare "ce-". */
size_t imp_ce_http_attr(const char *name, size_t len);

/* The id of an event made from a record without a ce_id of its own:
 * "<topic>-<partition>-<offset>", from the decimal texts of its partition
 * and offset (those of its kafka.partition and kafka.offset headers),
 * written into buf (NUL-terminated). Returns its length, or 0 when it
 * does not fit (IMP_CE_ID_MAX bytes always do). */
size_t imp_ce_record_id(const char *topic, const char *partition, size_t plen,
                        const char *offset, size_t olen, char *buf,
                        size_t buflen);

/* The source of an event made from a record of `topic`: "kafka://<topic>";
 * of a function's reply: "impulse://functions/<function>". Written into
 * buf (NUL-terminated, truncated to buflen); returns the length the whole
 * text has, like snprintf(). */
size_t imp_ce_record_source(const char *topic, char *buf, size_t buflen);
size_t imp_ce_reply_source(const char *function, char *buf, size_t buflen);

/* RFC 3339 times with milliseconds, in UTC. Records mostly come in the
 * same second as the one before, so the formatted second is cached. */
typedef struct imp_ce_clock_s {
  int64_t sec; /* second held in text, valid when len > 0 */
  size_t len;
  char text[IMP_CE_TIME_MAX - 5]; /* "2006-01-02T15:04:05" */
} imp_ce_clock_t;

/* An empty cache. */
void imp_ce_clock_init(imp_ce_clock_t *cache);

/* The last time RFC 3339 can write: 9999-12-31T23:59:59.999Z. */
#define IMP_CE_TIME_LAST_MS INT64_C(253402300799999)

/* Writes time `ms` (milliseconds since the epoch; a negative one counts as
 * 0, a later one than IMP_CE_TIME_LAST_MS as that one) into buf (at least
 * IMP_CE_TIME_MAX bytes, NUL-terminated), e.g. "2024-03-01T12:00:00.042Z";
 * returns its length. */
size_t imp_ce_time(imp_ce_clock_t *cache, int64_t ms, char *buf);

#endif
