#include "protocol.h"

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

ssize_t imp_frame_decode(const char *data, size_t len, size_t max_frame,
                         ProtobufCAllocator *alloc, Impulse__Envelope **env) {
  if (len < IMP_FRAME_HEADER) return 0;
  uint32_t n = imp_frame_len(data);
  if (n > max_frame) return IMP_EFRAMETOOBIG;
  if (len - IMP_FRAME_HEADER < n) return 0;
  Impulse__Envelope *e = impulse__envelope__unpack(
      alloc, n, (const uint8_t *)data + IMP_FRAME_HEADER);
  if (e == NULL) return IMP_EPROTO;
  if (e->body_case == IMPULSE__ENVELOPE__BODY__NOT_SET) {
    impulse__envelope__free_unpacked(e, alloc);
    return IMP_EPROTO;
  }
  *env = e;
  return (ssize_t)(IMP_FRAME_HEADER + n);
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
  const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(&impulse__error_code__descriptor, code);
  return v ? v->name : "UNKNOWN";
}
