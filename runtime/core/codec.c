#include "core/codec.h"

#include <stdlib.h>
#include <string.h>

int imp_frame_append(imp_buf_t *out, const Impulse__Envelope *env,
                     size_t max_frame) {
  size_t n = impulse__envelope__get_packed_size(env);
  if (n > max_frame || n > UINT32_MAX) return IMP_EFRAMETOOBIG;
  int rc = imp_buf_reserve(out, IMP_FRAME_HEADER + n);
  if (rc != 0) return rc;
  char *p = out->data + out->len;
  imp_frame_put_len(p, (uint32_t)n);
  impulse__envelope__pack(env, (uint8_t *)p + IMP_FRAME_HEADER);
  out->len += IMP_FRAME_HEADER + n;
  return 0;
}

ssize_t imp_frame_next(const char *data, size_t len, size_t max_frame) {
  if (len < IMP_FRAME_HEADER) return 0;
  uint32_t n = imp_frame_len(data);
  if (n > max_frame) return IMP_EFRAMETOOBIG;
  if (len - IMP_FRAME_HEADER < n) return 0;
  return (ssize_t)(IMP_FRAME_HEADER + (size_t)n);
}

size_t imp_frame_read_room(const char *data, size_t len, size_t max_frame,
                           size_t chunk) {
  if (len < IMP_FRAME_HEADER) return chunk;
  size_t n = imp_frame_len(data);
  if (n > max_frame || IMP_FRAME_HEADER + n <= len) return chunk;
  size_t rest = IMP_FRAME_HEADER + n - len;
  return rest > chunk ? rest : chunk;
}

/* True when no message in the tree under `m` holds an unknown field
 * numbered 0. protobuf-c 1.4 refuses a tag of field 0 written canonically
 * (0x02) but accepts it written as a longer varint (0x82 0x00), keeps it as
 * an unknown field, and packs it back canonically: a message holding one
 * does not decode again once repacked (a request forwarded in a new
 * envelope, a config written to the store). Our schema has no recursive
 * message, so the walk is as deep as the schema. */
static bool pb_tags_ok(const ProtobufCMessage *m) {
  for (unsigned i = 0; i < m->n_unknown_fields; i++)
    if (m->unknown_fields[i].tag == 0) return false;
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
    const char *base = (const char *)m;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      uint32_t which;
      memcpy(&which, base + f->quantifier_offset, sizeof which);
      if (which != f->id) continue;
    }
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n;
      const ProtobufCMessage *const *v;
      memcpy(&n, base + f->quantifier_offset, sizeof n);
      memcpy(&v, base + f->offset, sizeof v);
      for (size_t j = 0; j < n; j++)
        if (!pb_tags_ok(v[j])) return false;
    } else {
      const ProtobufCMessage *sub;
      memcpy(&sub, base + f->offset, sizeof sub);
      if (sub != NULL && !pb_tags_ok(sub)) return false;
    }
  }
  return true;
}

/* The same for an Envelope, looking only at the body its case selects
 * rather than walking every case of the oneof. */
static bool envelope_tags_ok(const Impulse__Envelope *e) {
  for (unsigned i = 0; i < e->base.n_unknown_fields; i++)
    if (e->base.unknown_fields[i].tag == 0) return false;
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
      &impulse__envelope__descriptor, (unsigned)e->body_case);
  if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE) return true;
  const ProtobufCMessage *body;
  memcpy(&body, (const char *)e + f->offset, sizeof body);
  return body == NULL || pb_tags_ok(body);
}

bool imp_pb_tags_ok(const ProtobufCMessage *m) {
  if (m->descriptor == &impulse__envelope__descriptor)
    return envelope_tags_ok((const Impulse__Envelope *)m);
  return pb_tags_ok(m);
}

ssize_t imp_frame_decode(const char *data, size_t len, size_t max_frame,
                         ProtobufCAllocator *alloc, Impulse__Envelope **env) {
  ssize_t whole = imp_frame_next(data, len, max_frame);
  if (whole <= 0) return whole;
  size_t n = (size_t)whole - IMP_FRAME_HEADER;
  Impulse__Envelope *e = impulse__envelope__unpack(
      alloc, n, (const uint8_t *)data + IMP_FRAME_HEADER);
  if (e == NULL) return IMP_EPROTO;
  if (e->body_case == IMPULSE__ENVELOPE__BODY__NOT_SET ||
      !envelope_tags_ok(e)) {
    impulse__envelope__free_unpacked(e, alloc);
    return IMP_EPROTO;
  }
  *env = e;
  return whole;
}

int imp_envelope_set_body(Impulse__Envelope *env,
                          Impulse__Envelope__BodyCase body_case, void *body) {
  /* Every case of the oneof is a message field whose number is the case. */
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
      &impulse__envelope__descriptor, (unsigned)body_case);
  const ProtobufCMessage *m = body;
  if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE ||
      (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0 || m == NULL ||
      m->descriptor != f->descriptor)
    return -EINVAL;
  env->body_case = body_case;
  memcpy((char *)env + f->offset, &m, sizeof m);
  return 0;
}

int imp_frame_append_body(imp_buf_t *out, size_t max_frame, uint64_t id,
                          Impulse__Envelope__BodyCase body_case, void *body) {
  Impulse__Envelope env = IMPULSE__ENVELOPE__INIT;
  int rc = imp_envelope_set_body(&env, body_case, body);
  if (rc != 0) return rc;
  env.id = id;
  return imp_frame_append(out, &env, max_frame);
}

void imp_envelope_error(Impulse__Envelope *env, Impulse__Error *err,
                        uint64_t id, int code, const char *message) {
  impulse__envelope__init(env);
  impulse__error__init(err);
  err->code = code;
  err->message = (char *)message;
  env->id = id;
  env->body_case = IMPULSE__ENVELOPE__BODY_ERROR;
  env->error = err;
}

const char *imp_error_code_name(int code) {
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
      &impulse__error_code__descriptor, code);
  return v ? v->name : "UNKNOWN";
}

int imp_envelope_split_id(const char *body, size_t len, uint64_t *id,
                          size_t *rest_off) {
  const unsigned char *p = (const unsigned char *)body;
  if (len < 2 || p[0] != 0x08) return IMP_EPROTO; /* field 1, varint */
  uint64_t v = 0;
  for (size_t i = 1; i < len && i <= 10; i++) {
    v |= (uint64_t)(p[i] & 0x7f) << (7 * (i - 1));
    if ((p[i] & 0x80) == 0) {
      *id = v;
      *rest_off = i + 1;
      return 0;
    }
  }
  return IMP_EPROTO;
}

int imp_varint_read(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t r = 0;
  for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
    uint8_t b = *(*p)++;
    r |= (uint64_t)(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = r;
      return 0;
    }
  }
  return -1;
}

size_t imp_varint_put(uint8_t *p, uint64_t v) {
  size_t n = 0;
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    p[n++] = (uint8_t)(v ? (b | 0x80) : b);
  } while (v);
  return n;
}

int imp_frame_append_with_id(imp_buf_t *out, uint64_t id, const char *rest,
                             size_t restlen, size_t max_frame) {
  unsigned char head[11];
  size_t hl = 0;
  head[hl++] = 0x08;
  do {
    unsigned char b = id & 0x7f;
    id >>= 7;
    head[hl++] = (unsigned char)(id ? (b | 0x80) : b);
  } while (id);
  size_t n = hl + restlen;
  if (n > max_frame || n > UINT32_MAX) return IMP_EFRAMETOOBIG;
  int rc = imp_buf_reserve(out, IMP_FRAME_HEADER + n);
  if (rc != 0) return rc;
  char *p = out->data + out->len;
  imp_frame_put_len(p, (uint32_t)n);
  memcpy(p + IMP_FRAME_HEADER, head, hl);
  if (restlen) memcpy(p + IMP_FRAME_HEADER + hl, rest, restlen);
  out->len += IMP_FRAME_HEADER + n;
  return 0;
}

int imp_answer_code(const char *rest, size_t restlen) {
  const unsigned char *p = (const unsigned char *)rest;
  const unsigned char *end = p + restlen;
  if (restlen == 0) return IMPULSE__ERROR_CODE__INTERNAL;
  if (p[0] == IMP_TAG_INVOKE_OK) return 0;
  if (p[0] != IMP_TAG_ERROR) return IMPULSE__ERROR_CODE__INTERNAL;
  p++;
  uint64_t len;
  if (imp_varint_read(&p, end, &len) != 0 || len > (uint64_t)(end - p))
    return IMPULSE__ERROR_CODE__INTERNAL;
  end = p + len;
  /* Error { required int32 code = 1; optional string message = 2; } */
  while (p < end) {
    uint64_t key, v;
    if (imp_varint_read(&p, end, &key) != 0) break;
    if (key == 0x08) {
      if (imp_varint_read(&p, end, &v) != 0) break;
      int32_t code = (int32_t)(uint32_t)v;
      return code;
    }
    if ((key & 7) == 0) {
      if (imp_varint_read(&p, end, &v) != 0) break;
    } else if ((key & 7) == 2) {
      if (imp_varint_read(&p, end, &v) != 0 || v > (uint64_t)(end - p)) break;
      p += v;
    } else {
      break;
    }
  }
  return IMPULSE__ERROR_CODE__INTERNAL;
}

Impulse__Envelope *imp_body_decode(const char *rest, size_t len,
                                   ProtobufCAllocator *alloc) {
  /* The body is decoded as an Envelope with id 0 in front: a copy with two
   * bytes more (on the stack when small). */
  uint8_t stackbuf[4096];
  uint8_t *buf = len + 2 <= sizeof stackbuf ? stackbuf : malloc(len + 2);
  if (buf == NULL) return NULL;
  buf[0] = 0x08; /* field 1 (id), varint 0 */
  buf[1] = 0x00;
  if (len) memcpy(buf + 2, rest, len);
  Impulse__Envelope *env = impulse__envelope__unpack(alloc, len + 2, buf);
  if (buf != stackbuf) free(buf);
  if (env != NULL && !envelope_tags_ok(env)) {
    impulse__envelope__free_unpacked(env, alloc);
    return NULL;
  }
  return env;
}

int imp_batch_answer_decode(const char *rest, size_t len,
                            ProtobufCAllocator *alloc,
                            Impulse__InvokeBatchResponse **resp,
                            const char **message) {
  const uint8_t *p = (const uint8_t *)rest, *end = p + len;
  uint64_t key = 0, n = 0;
  *resp = NULL;
  *message = "undecodable answer from the instance";
  if (imp_varint_read(&p, end, &key) != 0 ||
      imp_varint_read(&p, end, &n) != 0 || n > (uint64_t)(end - p))
    return IMPULSE__ERROR_CODE__INTERNAL;
  if (key == IMP_KEY_BYTES(IMP_FIELD_INVOKE_BATCH_OK)) {
    *resp = impulse__invoke_batch_response__unpack(alloc, (size_t)n, p);
    if (*resp == NULL) return IMPULSE__ERROR_CODE__INTERNAL;
    if (!pb_tags_ok(&(*resp)->base)) {
      impulse__invoke_batch_response__free_unpacked(*resp, alloc);
      *resp = NULL;
      return IMPULSE__ERROR_CODE__INTERNAL;
    }
    *message = NULL;
    return 0;
  }
  if (key == IMP_KEY_BYTES(IMP_FIELD_ERROR)) {
    Impulse__Error *error = impulse__error__unpack(alloc, (size_t)n, p);
    if (error == NULL) return IMPULSE__ERROR_CODE__INTERNAL;
    *message = error->message ? error->message : "error";
    return error->code ? error->code : IMPULSE__ERROR_CODE__INTERNAL;
  }
  *message = "unexpected answer from the instance";
  return IMPULSE__ERROR_CODE__INTERNAL;
}
