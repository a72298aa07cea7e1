/*
 * The client library's read path (runtime/client/client.c): a client over
 * one end of a socket pair pipelines some requests, then takes the input
 * as the server's byte stream, in chunks, through imp_client_received()
 * (the decode every read goes through), and hands the answers out with
 * imp_client_recv().
 *
 * Byte 0: bytes per chunk - 1; byte 1: requests sent (0..63). The rest is
 * the stream. A model built on imp_frame_decode() over the whole stream
 * says what the client must do; checks:
 * - every answer to a request in flight is queued, and handed out in
 *   arrival order, the same envelope;
 * - the connection is closed, with the status the contract names, at the
 *   first frame over the limit or not decoding (PROTOCOL), the first
 *   answer to an id never sent or beyond the requests in flight
 *   (PROTOCOL), or an Error with id 0 (its code); nothing is taken after
 *   that (CONNECTION), and answers queued before stay available;
 * - the requests went out as frames with ids 1..n.
 */
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client_internal.h"
#include "fuzz.h"
#include "pbcheck.h"

#define MAX_SENT 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t chunk = (size_t)data[0] + 1;
  uint64_t sent = data[1] % MAX_SENT;
  data += 2;
  size -= 2;

  int sv[2];
  FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  FUZZ_CHECK(fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0);
  impulse_client_t *client = NULL;
  FUZZ_CHECK(imp_client_open_fd(sv[0], "server", &client) == 0);
  for (uint64_t i = 1; i <= sent; i++) {
    Impulse__Envelope req = IMPULSE__ENVELOPE__INIT;
    Impulse__ServerInfoRequest info = IMPULSE__SERVER_INFO_REQUEST__INIT;
    req.body_case = IMPULSE__ENVELOPE__BODY_SERVER_INFO;
    req.server_info = &info;
    uint64_t id = 0;
    FUZZ_CHECK(imp_client_send(client, &req, &id) == 0 && id == i);
  }

  /* The model: answers accepted, in order, and the status that ends the
   * connection (0 while it stands). */
  size_t max_frame = imp_client_max_frame(client);
  size_t off = 0, accepted = 0, ends_at = SIZE_MAX;
  size_t starts[MAX_SENT];
  int status = 0;
  while (off < size) {
    Impulse__Envelope *env = NULL;
    ssize_t n = imp_frame_decode((const char *)data + off, size - off,
                                 max_frame, NULL, &env);
    if (n == 0) break;
    if (n < 0) {
      status = IMPULSE_S_PROTOCOL;
      /* Over the limit: known from the prefix; undecodable: once whole. */
      ends_at = off + IMP_FRAME_HEADER +
                (n == IMP_EFRAMETOOBIG
                     ? 0
                     : (size_t)imp_frame_len((const char *)data + off));
      break;
    }
    if (env->id == 0 && env->body_case == IMPULSE__ENVELOPE__BODY_ERROR) {
      int32_t code = env->error->code;
      status = code >= 1 && code <= 16 ? -(int)code : IMPULSE_S_INTERNAL;
    } else if (env->id == 0 || env->id > sent || accepted == sent) {
      status = IMPULSE_S_PROTOCOL;
    } else {
      starts[accepted++] = off;
    }
    impulse__envelope__free_unpacked(env, NULL);
    off += (size_t)n;
    if (status != 0) {
      ends_at = off;
      break;
    }
  }

  /* The stream in chunks: the chunk where the model ends the connection
   * returns its status, any later one CONNECTION. */
  int ended = 0;
  for (size_t at = 0; at < size; at += chunk) {
    size_t n = size - at < chunk ? size - at : chunk;
    int rc = imp_client_received(client, data + at, n);
    if (ended) {
      FUZZ_CHECK(rc == IMPULSE_S_CONNECTION);
    } else if (status != 0 && at + n >= ends_at) {
      FUZZ_CHECK(rc == status);
      ended = 1;
    } else {
      FUZZ_CHECK(rc == 0);
    }
  }
  FUZZ_CHECK(ended == (status != 0));

  /* Answers come out in arrival order, each the frame the model saw. */
  for (size_t k = 0; k < accepted; k++) {
    Impulse__Envelope *env = NULL, *ref = NULL;
    FUZZ_CHECK(imp_client_recv(client, &env) == 0);
    const char *frame = (const char *)data + starts[k];
    FUZZ_CHECK(
        imp_frame_decode(frame, size - starts[k], max_frame, NULL, &ref) > 0);
    FUZZ_CHECK(pb_same(&env->base, &ref->base));
    impulse__envelope__free_unpacked(env, NULL);
    impulse__envelope__free_unpacked(ref, NULL);
  }
  if (status != 0 && accepted < sent) {
    Impulse__Envelope *env = NULL;
    FUZZ_CHECK(imp_client_recv(client, &env) == IMPULSE_S_CONNECTION);
  }

  /* What went out: the requests, frames with ids 1..n, flushed by the
   * first imp_client_recv() while the connection stood; nothing when it
   * failed first (the output is dropped) or nothing was received. */
  FUZZ_CHECK(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
  imp_buf_t got = {0};
  for (;;) {
    FUZZ_CHECK(imp_buf_reserve(&got, 4096) == 0);
    ssize_t n = read(sv[1], got.data + got.len, got.cap - got.len);
    if (n <= 0) break;
    got.len += (size_t)n;
  }
  uint64_t went = status == 0 && accepted > 0 ? sent : 0;
  size_t pos = 0;
  for (uint64_t i = 1; i <= went; i++) {
    Impulse__Envelope *req = NULL;
    ssize_t n =
        imp_frame_decode(got.data + pos, got.len - pos, max_frame, NULL, &req);
    FUZZ_CHECK(n > 0 && req->id == i);
    FUZZ_CHECK(req->body_case == IMPULSE__ENVELOPE__BODY_SERVER_INFO);
    impulse__envelope__free_unpacked(req, NULL);
    pos += (size_t)n;
  }
  FUZZ_CHECK(pos == got.len);
  imp_buf_free(&got);
  impulse_client_close(client);
  close(sv[1]);
  return 0;
}
