#include "core/wire.h"

#include <string.h>

/* Field keys written by hand below: the Envelope's from core/codec.h, the
 * others from impulse.proto. */
#define KEY_VARINT(field) ((uint64_t)(field) << 3)
#define ENVELOPE_ID KEY_VARINT(1)
#define ENVELOPE_ERROR IMP_KEY_BYTES(IMP_FIELD_ERROR)
#define ENVELOPE_INVOKE_BATCH_OK IMP_KEY_BYTES(IMP_FIELD_INVOKE_BATCH_OK)
#define ERROR_CODE KEY_VARINT(1)       /* Error.code */
#define BATCH_RESULTS IMP_KEY_BYTES(1) /* InvokeBatchResponse.results */
#define BATCH_VERSION KEY_VARINT(2)    /* InvokeBatchResponse.version */

/* ---- requests ------------------------------------------------------------ */

/*
 * Every piece of one decoded request (the envelope, its strings, a batch's
 * items and their headers) comes from one arena, which lives in its own
 * first block and is released at once with the envelope. protobuf-c
 * allocates the top message first and frees it last, so each piece
 * carries a tag naming its arena and whether it is that first one. A
 * batch of 64 records is hundreds of pieces; a malloc and a free each cost
 * more than the rest of the decode. Pieces get one byte more, set to NUL:
 * protobuf-c allocates a bytes field as exactly its length and copies it
 * in, so the NUL after it lets payloads and header values be handed on as
 * C strings without copying them again.
 */
#define PIECE_TAG 16u

static void *piece_alloc(void *data, size_t size) {
  imp_wire_decoder_t *decoder = data;
  if (size > IMP_ARENA_MAX - PIECE_TAG - 1) return NULL;
  imp_arena_t *arena = decoder->cur;
  bool root = arena == NULL;
  if (root) {
    imp_arena_t first;
    imp_arena_init(&first, decoder->block);
    arena = imp_arena_alloc(&first, sizeof *arena);
    if (arena == NULL) {
      decoder->failed = true;
      return NULL;
    }
    *arena = first;
    decoder->cur = arena;
  }
  char *p = imp_arena_alloc(arena, PIECE_TAG + size + 1);
  if (p == NULL) {
    decoder->failed = true;
    return NULL; /* protobuf-c fails the decode; imp_wire_decode() frees */
  }
  uint64_t is_root = root;
  memcpy(p, &arena, sizeof arena);
  memcpy(p + 8, &is_root, sizeof is_root);
  p += PIECE_TAG;
  p[size] = '\0';
  return p;
}

/* Releases an arena that lives in its own first block. */
static void request_release(imp_arena_t *arena) {
  imp_arena_t copy = *arena;
  imp_arena_release(&copy);
}

static void piece_free(void *data, void *p) {
  imp_wire_decoder_t *decoder = data;
  if (p == NULL) return;
  const char *tag = (const char *)p - PIECE_TAG;
  imp_arena_t *arena;
  uint64_t is_root;
  memcpy(&arena, tag, sizeof arena);
  memcpy(&is_root, tag + 8, sizeof is_root);
  if (!is_root) return; /* freed with the arena, when the root is */
  /* A failed unpack frees its top message before the scratch pieces it
   * allocated after it: the arena must outlive those, imp_wire_decode()
   * releases it. */
  if (decoder != NULL && decoder->cur == arena) return;
  request_release(arena);
}

void imp_wire_decoder_init(imp_wire_decoder_t *decoder) {
  memset(decoder, 0, sizeof *decoder);
  decoder->pb.alloc = piece_alloc;
  decoder->pb.free = piece_free;
  decoder->pb.allocator_data = decoder;
}

ssize_t imp_wire_decode(imp_wire_decoder_t *decoder, const char *data,
                        size_t len, size_t max_frame, Impulse__Envelope **env) {
  /* The decoded pieces take a few times a small frame's bytes (a big one
   * is mostly its payload): one block of about that size, not a fixed
   * 16 KiB for a 300-byte call. Only a length the decode accepts counts. */
  size_t flen = len >= IMP_FRAME_HEADER ? (size_t)imp_frame_len(data) : 0;
  if (flen > max_frame) flen = 0;
  decoder->block = (flen < 65536 / 3 ? 4 * flen : flen + 65536) + 512;
  decoder->cur = NULL;
  decoder->failed = false;
  ssize_t n = imp_frame_decode(data, len, max_frame, &decoder->pb, env);
  imp_arena_t *arena = decoder->cur;
  decoder->cur = NULL;
  if (n > 0) return n; /* *env is the root piece of `arena` */
  if (arena != NULL) request_release(arena);
  return n < 0 && decoder->failed ? -ENOMEM : n;
}

void imp_wire_request_free(Impulse__Envelope *env) {
  piece_free(NULL, env);
}

/* ---- answers ------------------------------------------------------------- */

int imp_wire_append_error(imp_buf_t *out, size_t max_frame, uint64_t id,
                          int code, const char *message) {
  Impulse__Envelope env;
  Impulse__Error err;
  imp_envelope_error(&env, &err, id, code, message);
  return imp_frame_append(out, &env, max_frame);
}

int imp_wire_append_invoke_ok(imp_buf_t *out, size_t max_frame, uint64_t id,
                              const imp_wire_answer_t *answer,
                              uint32_t version) {
  Impulse__InvokeResponse ok = IMPULSE__INVOKE_RESPONSE__INIT;
  ok.has_payload = 1;
  ok.payload.len = answer->len;
  ok.payload.data =
      answer->payload != NULL ? (uint8_t *)answer->payload : (uint8_t *)"";
  ok.n_headers = answer->n_headers;
  ok.headers = answer->headers;
  ok.has_status = 1;
  ok.status = 0;
  ok.has_version = 1;
  ok.version = version;
  /* Every answer of a call passes here: the field is set directly, without
   * imp_frame_append_body()'s descriptor lookup. */
  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  env.id = id;
  env.body_case = IMPULSE__ENVELOPE__BODY_INVOKE_OK;
  env.invoke_ok = &ok;
  return imp_frame_append(out, &env, max_frame);
}

int imp_wire_append_load_ok(imp_buf_t *out, size_t max_frame, uint64_t id,
                            uint32_t abi_version, uint64_t load_us) {
  Impulse__LoadResponse ok = IMPULSE__LOAD_RESPONSE__INIT;
  ok.has_abi_version = 1;
  ok.abi_version = abi_version;
  ok.has_load_us = 1;
  ok.load_us = load_us;
  return imp_frame_append_body(out, max_frame, id,
                               IMPULSE__ENVELOPE__BODY_LOAD_OK, &ok);
}

int imp_wire_append_attach_ok(imp_buf_t *out, size_t max_frame, uint64_t id,
                              const char *function, uint32_t version,
                              uint32_t concurrency, int32_t pid) {
  Impulse__AttachResponse ok = IMPULSE__ATTACH_RESPONSE__INIT;
  if (function != NULL) {
    ok.function = (char *)function;
    ok.has_version = ok.has_concurrency = 1;
    ok.version = version;
    ok.concurrency = concurrency;
  }
  ok.has_pid = 1;
  ok.pid = pid;
  return imp_frame_append_body(out, max_frame, id,
                               IMPULSE__ENVELOPE__BODY_ATTACH_OK, &ok);
}

/*
 * A batch answer is Envelope{1: id, 44: InvokeBatchResponse{1: results,
 * 2: version}}. The results are packed as they come, behind BATCH_HEAD
 * bytes of room; at the end the version goes behind them, the tag and
 * length of field 44 into the room just before them, and the frame is
 * written from there with the id in front (imp_frame_append_with_id()).
 */
#define BATCH_HEAD 16u      /* room for field 44's tag and length */
#define BATCH_ITEM_HINT 64u /* bytes reserved per item at the start */

int imp_wire_batch_init(imp_wire_batch_t *batch, size_t items) {
  memset(batch, 0, sizeof *batch);
  if (items > (SIZE_MAX - BATCH_HEAD) / BATCH_ITEM_HINT) return -ENOMEM;
  if (imp_buf_reserve(&batch->buf, BATCH_HEAD + BATCH_ITEM_HINT * items) != 0)
    return -ENOMEM;
  batch->buf.len = BATCH_HEAD;
  return 0;
}

int imp_wire_batch_add(imp_wire_batch_t *batch, size_t limit, int code,
                       const char *message, const imp_wire_answer_t *answer) {
  Impulse__BatchResult r = IMPULSE__BATCH_RESULT__INIT;
  if (code != 0) {
    r.has_code = 1;
    r.code = code;
    r.message = (char *)message;
  } else {
    r.has_payload = 1;
    r.payload.len = answer->len;
    r.payload.data =
        answer->payload != NULL ? (uint8_t *)answer->payload : (uint8_t *)"";
    r.n_headers = answer->n_headers;
    r.headers = answer->headers;
  }
  size_t len = impulse__batch_result__get_packed_size(&r);
  uint8_t head[11];
  size_t hl = imp_varint_put(head, BATCH_RESULTS);
  hl += imp_varint_put(head + hl, len);
  size_t used = batch->buf.len - BATCH_HEAD;
  if (len > limit || used + hl + len > limit) return -ENOSPC;
  if (imp_buf_reserve(&batch->buf, hl + len) != 0) return -ENOMEM;
  memcpy(batch->buf.data + batch->buf.len, head, hl);
  impulse__batch_result__pack(&r,
                              (uint8_t *)batch->buf.data + batch->buf.len + hl);
  batch->buf.len += hl + len;
  return 0;
}

int imp_wire_batch_finish(imp_wire_batch_t *batch, uint64_t id,
                          uint32_t version, imp_buf_t *out, size_t max_frame) {
  uint8_t tail[11];
  size_t tl = imp_varint_put(tail, BATCH_VERSION);
  tl += imp_varint_put(tail + tl, version);
  int rc = imp_buf_append(&batch->buf, tail, tl);
  if (rc == 0) {
    uint8_t head[BATCH_HEAD];
    size_t hl = imp_varint_put(head, ENVELOPE_INVOKE_BATCH_OK);
    hl += imp_varint_put(head + hl, batch->buf.len - BATCH_HEAD);
    char *body = batch->buf.data + BATCH_HEAD - hl;
    memcpy(body, head, hl);
    rc = imp_frame_append_with_id(out, id, body,
                                  batch->buf.len - BATCH_HEAD + hl, max_frame);
  }
  imp_wire_batch_free(batch);
  return rc;
}

void imp_wire_batch_free(imp_wire_batch_t *batch) {
  imp_buf_free(&batch->buf);
}

/* ---- crash --------------------------------------------------------------- */

size_t imp_wire_crash_mark(uint8_t buf[IMP_WIRE_CRASH_MARK_MAX], uint64_t id) {
  /* [length][1: id][2: Error{1: CRASHED}] */
  size_t n = IMP_FRAME_HEADER;
  n += imp_varint_put(buf + n, ENVELOPE_ID);
  n += imp_varint_put(buf + n, id);
  n += imp_varint_put(buf + n, ENVELOPE_ERROR);
  buf[n++] = 2; /* the Error's length: its one field below */
  n += imp_varint_put(buf + n, ERROR_CODE);
  n += imp_varint_put(buf + n, IMPULSE__ERROR_CODE__CRASHED);
  imp_frame_put_len((char *)buf, (uint32_t)(n - IMP_FRAME_HEADER));
  return n;
}
