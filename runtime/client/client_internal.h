/*
 * Private entry points of the client library, used by the impulse CLI for
 * the control messages the public API in include/impulse/client.h does not
 * wrap (list, describe, server info, the sha256 of a deploy...). Not
 * installed.
 */
#ifndef IMP_CLIENT_INTERNAL_H
#define IMP_CLIENT_INTERNAL_H

#include <stddef.h>

#include "core/codec.h"
#include "impulse/client.h"

/* Default server address when neither the caller nor $IMPULSE_ADDR gives
 * one. */
#define IMP_CLIENT_DEFAULT_ADDR "127.0.0.1:7070"

/* Hard ceiling on the frame size the client accepts to learn from a server
 * (ServerInfoResponse.max_frame), so a hostile server cannot make the client
 * buffer arbitrarily large frames. */
#define IMP_CLIENT_MAX_FRAME_CEILING (1024u << 20)

/*
 * Sends `req` (its id is assigned here; the body and everything it points
 * to stay borrowed) and waits for the envelope answering it. Answers to
 * pipelined invocations that arrive meanwhile are kept for
 * impulse_invoke_recv().
 *
 * Returns 0 with *resp set (free it with
 * impulse__envelope__free_unpacked(*resp, NULL)) when the answer is not an
 * Error. An Error answer is freed and returned as its negative status
 * (-code); its message is kept for impulse_client_error(). Other failures:
 * IMPULSE_S_CONNECTION, IMPULSE_S_PROTOCOL, IMPULSE_S_NOMEM,
 * IMPULSE_S_TOO_LARGE (request above the frame limit), IMPULSE_S_INVALID.
 */
int imp_client_call(impulse_client_t *client, Impulse__Envelope *req,
                    Impulse__Envelope **resp);

/* imp_client_call() that also checks the answer has body `expect`; another
 * body is freed and reported as IMPULSE_S_PROTOCOL. */
int imp_client_call_expect(impulse_client_t *client, Impulse__Envelope *req,
                           Impulse__Envelope__BodyCase expect,
                           Impulse__Envelope **resp);

/*
 * Pipelined raw requests. imp_client_send() queues `req` (its id is
 * assigned here and returned in *id; the body stays borrowed) without
 * waiting; the output is flushed when it grows large or on the next
 * imp_client_recv(). imp_client_recv() waits for the next answer to any
 * request sent this way, in completion order; *resp is the answer as
 * received, an Error included (free it with
 * impulse__envelope__free_unpacked(*resp, NULL)). Do not mix with
 * impulse_invoke_send() on one client. Same failure statuses as
 * imp_client_call().
 */
int imp_client_send(impulse_client_t *client, Impulse__Envelope *req,
                    uint64_t *id);
int imp_client_recv(impulse_client_t *client, Impulse__Envelope **resp);

/*
 * A client over `fd`, a connected non-blocking stream socket (taken: closed
 * by impulse_client_close(), or here on failure), with no hello said and
 * the default frame limit; `name` stands for the server in messages.
 * Returns 0 with *out, or IMPULSE_S_NOMEM. For tests and the client fuzz
 * target, which play the server on the other end.
 */
int imp_client_open_fd(int fd, const char *name, impulse_client_t **out);

/*
 * Takes `len` bytes as if one read of the connection had returned them:
 * appends them to the read buffer and decodes every frame complete there,
 * exactly as a read does (answers queued for the calls waiting on them; a
 * frame over the limit, one that does not decode or an answer to no
 * request closes the connection). Returns 0 or the status that closed it
 * (IMPULSE_S_CONNECTION when it was already closed). For the fuzz target,
 * which feeds a server's byte stream in pieces of its choosing.
 */
int imp_client_received(impulse_client_t *client, const void *data, size_t len);

/* The "host:port" the client connects or connected to (borrowed). */
const char *imp_client_addr(const impulse_client_t *client);

/* HelloResponse.server of the connected server, or "" (borrowed). */
const char *imp_client_server(const impulse_client_t *client);

/* Non-zero when the server accepted the token as the admin token. */
int imp_client_is_admin(const impulse_client_t *client);

/* Sets the largest frame sent or accepted (clamped to
 * [64 KiB, IMP_CLIENT_MAX_FRAME_CEILING]). impulse_client_connect() starts
 * from IMP_DEFAULT_MAX_FRAME and adopts the limit the server reports in
 * ServerInfoResponse.max_frame. */
void imp_client_set_max_frame(impulse_client_t *client, size_t max_frame);

/* The largest frame the client sends: the server's limit as adopted at
 * connect (within the clamp above), else IMP_DEFAULT_MAX_FRAME. A request
 * that does not fit fails with IMPULSE_S_TOO_LARGE before it is sent. */
size_t imp_client_max_frame(const impulse_client_t *client);

#endif
