/*
 * Recorded requests (see recordings.c): a bounded sample of each function's
 * live calls with their answers, kept in the `recordings` column family so
 * that an upgrade can replay them against a new version.
 */
#ifndef IMP_RECORDINGS_H
#define IMP_RECORDINGS_H

#include <stddef.h>
#include <stdint.h>

#include "base/store.h"
#include "impulse.pb-c.h"

/* Recordings kept per function (slots 0..IMP_REC_MAX-1, a ring). */
#define IMP_REC_MAX 32u
/* Once IMP_REC_MAX are kept, one call in IMP_REC_EVERY is sampled. */
#define IMP_REC_EVERY 100u
/* Requests and answers above this many bytes are not recorded. */
#define IMP_REC_MAX_BYTES (64u * 1024u)

/* A function's sampling state, in its imp_function_t. */
typedef struct imp_fn_rec_s {
  int loaded;       /* stored recordings counted (on the first call) */
  uint32_t count;   /* recordings stored, at most IMP_REC_MAX */
  uint64_t next;    /* ring position of the next recording (slot % MAX) */
  uint64_t seen;    /* calls looked at once the ring is full */
  uint32_t pending; /* sampled calls not answered yet */
} imp_fn_rec_t;

/* A sampled call's copy of its request, in the call (data NULL when the
 * call is not sampled). */
typedef struct imp_rec_req_s {
  char *data; /* owned */
  size_t len;
} imp_rec_req_t;

/* One stored recording. `request` is the request Envelope's body after its
 * id field (an InvokeRequest, as forwarded to a worker: replay it with
 * imp_instance_send()); `answer` is the worker's reply after its id (an
 * InvokeResponse `invoke_ok` or an `error`: see imp_rec_answer_ok()). */
typedef struct imp_recorded_s {
  uint32_t version; /* version that answered */
  char *request;
  size_t reqlen;
  char *answer;
  size_t anslen;
  uint64_t recorded_ms; /* wall clock */
  uint32_t duration_us; /* sent to the instance until answered; 0 unknown */
} imp_recorded_t;

/* Every stored recording of `function`, oldest first: 0 with *out (an
 * array of *n, NULL when *n is 0; free with imp_rec_free()), or -ENOMEM /
 * IMP_ESTORE (then *out is NULL and *n 0). Undecodable records are
 * skipped. */
int imp_rec_load(imp_store_t *store, const char *function, imp_recorded_t **out,
                 size_t *n);

/* Frees what imp_rec_load() returned (NULL is fine). */
void imp_rec_free(imp_recorded_t *r, size_t n);

/* 1 when `answer` (a reply after its id, borrowed) is an `invoke_ok` whose
 * handler status is 0, else 0 (an `error`, a non-zero status, garbage). */
int imp_rec_answer_ok(const char *answer, size_t len);

/* The response payload of an `invoke_ok` answer (borrowed): 0 with
 * out->data (a copy, free with free(); NULL when the payload is empty) and
 * out->len, or -EINVAL (not an invoke_ok) / -ENOMEM, and then *out is
 * {0, NULL}. */
int imp_rec_answer_payload(const char *answer, size_t len,
                           ProtobufCBinaryData *out);

/* Adds the deletion of every recording of `function` (the function is
 * being deleted) to `batch` (borrowed), so that it is written with the
 * deletion itself. Returns how many, or a negative error of the scan. */
int imp_rec_forget(imp_batch_t *batch, imp_store_t *store,
                   const char *function);

/* --- hooks of the call path (call.c) --- */

/* At the start of a call of `function` (st: its sampling state): decides
 * whether to sample it and, if so, copies `rest` (the request body after
 * its id, borrowed) into req. */
void imp_rec_sample(imp_store_t *store, const char *function, imp_fn_rec_t *st,
                    imp_rec_req_t *req, const char *rest, size_t restlen);

/* A sampled call got its worker's answer (`rest`, borrowed) from `version`
 * after duration_us: stores the recording (no fsync: these are samples). */
void imp_rec_done(imp_store_t *store, const char *function, imp_fn_rec_t *st,
                  const imp_rec_req_t *req, uint32_t version,
                  uint64_t duration_us, const char *rest, size_t restlen);

/* The call is finished (answered or failed): releases its sample's place
 * in st->pending and frees req->data. */
void imp_rec_call_end(imp_fn_rec_t *st, imp_rec_req_t *req);

#endif
