#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into tests/fuzz/corpus/NAME/.

Seeds are small valid inputs (and a few near misses) from which libFuzzer
starts; they are committed, and `make test` replays them. Run again after
changing a seed: `python3 tests/fuzz/make_seeds.py`. Inputs that once
crashed a target are not written here: they are kept as crash-* files in
the corpus by hand, with the commit that fixed them.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | 0x80 if v else b)
        if not v:
            return bytes(out)


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def field_bytes(num, b):
    if isinstance(b, str):
        b = b.encode()
    return varint((num << 3) | 2) + varint(len(b)) + b


def frame(body):
    return struct.pack(">I", len(body)) + body


def header(name, value):
    return field_bytes(1, name) + field_bytes(2, value)


def invoke(function, payload=b"", headers=(), deadline_ms=0, key=None):
    b = field_bytes(1, function) + field_bytes(2, payload)
    for n, v in headers:
        b += field_bytes(3, header(n, v))
    if deadline_ms:
        b += field_varint(4, deadline_ms)
    if key:
        b += field_bytes(5, key)
    return b


def envelope(id_, body_field, body):
    return field_varint(1, id_) + field_bytes(body_field, body)


def error(code, message):
    return field_varint(1, code) + field_bytes(2, message)


def write(name, seeds):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for fname, data in seeds.items():
        with open(os.path.join(d, fname), "wb") as f:
            f.write(data)


def frame_seeds():
    # Byte 0: read size - 1; byte 1: frame limit choice (see frame.c).
    inv = envelope(7, 5, invoke("echo", b"hello", [("x-a", "1")], 1000, "k1"))
    err = envelope(8, 2, error(5, "no function 'x'"))
    ok = envelope(9, 6, field_bytes(1, b"payload") + field_varint(4, 3))
    hello = envelope(1, 3, field_bytes(1, "token"))
    two = frame(inv) + frame(err)
    return {
        "invoke": bytes([255, 3]) + frame(inv),
        "error": bytes([255, 2]) + frame(err),
        "invoke_ok": bytes([255, 2]) + frame(ok),
        "hello": bytes([0, 2]) + frame(hello),
        "two_frames_bytewise": bytes([0, 3]) + two,
        "two_frames_split": bytes([10, 3]) + two,
        "too_big": bytes([255, 0]) + frame(inv),
        "no_body": bytes([255, 3]) + frame(field_varint(1, 5)),
        "cut_short": bytes([255, 3]) + frame(inv)[:-3],
    }


def batch_item(payload, headers=()):
    b = field_bytes(1, payload)
    for n, v in headers:
        h = field_bytes(1, n) + (field_bytes(2, v) if v is not None else b"")
        b += field_bytes(2, h)
    return b


def invoke_batch(function, items):
    b = field_bytes(1, function)
    for it in items:
        b += field_bytes(2, it)
    return b


def batch_result(code=0, message=None, payload=None, headers=()):
    b = b""
    if code:
        b += field_varint(1, code)
    if message is not None:
        b += field_bytes(2, message)
    if payload is not None:
        b += field_bytes(3, payload)
    for n, v in headers:
        b += field_bytes(4, header(n, v))
    return b


def batch_ok(results, version):
    b = b"".join(field_bytes(1, r) for r in results)
    return b + field_varint(2, version)


def wire_seeds():
    # Byte 0: frame limit choice (see wire.c); then one Envelope body.
    items = [batch_item(b"r1", [("k", b"v"), ("nv", None)]),
             batch_item(b"", []), batch_item(b"x" * 200, [("h", b"")])]
    return {
        "invoke": bytes([3]) + envelope(7, 5, invoke(
            "echo", b"hello", [("x-a", "1"), ("x-b", "")], 1000, "k1")),
        "invoke_batch": bytes([3]) + envelope(9, 43, invoke_batch(
            "sum", items)),
        "load": bytes([3]) + envelope(2, 19, field_bytes(1, "fn") +
                                       field_varint(2, 4) +
                                       field_bytes(3, "/fn.so")),
        "attach": bytes([3]) + envelope(3, 33, field_varint(1, 5) +
                                         field_bytes(2, b"secret")),
        "over_limit": bytes([0]) + envelope(7, 5, invoke("echo", b"hello")),
        "no_body": bytes([3]) + field_varint(1, 5),
    }


def batch_seeds():
    # A function name, then items: shape byte (headers, long payload),
    # payload, then per header a name and a value flag (see batch.c).
    def item(payload, headers, shape_extra=0):
        b = bytes([len(headers) | shape_extra, len(payload)]) + payload
        for n, v in headers:
            b += bytes([len(n)]) + n
            b += bytes([0]) if v is None else bytes([1, len(v)]) + v
        return b
    fn = b"sum"
    return {
        "one": bytes([len(fn)]) + fn + item(b"hello", [(b"k", b"v")]),
        "headers": bytes([len(fn)]) + fn + item(b"", [(b"a", None),
                                                     (b"b", b""),
                                                     (b"c", b"\x00\xff")]),
        "long": bytes([len(fn)]) + fn + bytes([0x80 | 1, 0]) + b"y" * 200,
        "many": bytes([len(fn)]) + fn + b"".join(
            item(bytes([i]) * i, []) for i in range(20)),
        "empty": b"\x00",
    }


def answer_seeds():
    # Byte 0: arena block and batch limit (see answer.c); then the body of
    # an answer after its id.
    ok = batch_ok([batch_result(payload=b"p", headers=[("k", "v")]),
                   batch_result(code=8, message="function failed")], 3)
    return {
        "batch_ok": bytes([0xff]) + field_bytes(44, ok),
        "batch_empty": bytes([0x10]) + field_bytes(44, batch_ok([], 1)),
        "error": bytes([0x21]) + field_bytes(2, error(7, "too slow")),
        "error_no_message": bytes([0x21]) + field_bytes(2, field_varint(1, 9)),
        "error_zero": bytes([0x21]) + field_bytes(2, error(0, "")),
        "invoke_ok": bytes([0x30]) + field_bytes(6, field_bytes(1, b"pay") +
                                                  field_varint(4, 3)),
        "other": bytes([0x30]) + field_bytes(3, field_bytes(1, "t")),
        "cut": bytes([0x30]) + field_bytes(44, ok)[:-4],
        "two_fields": bytes([0x30]) + field_bytes(44, ok) +
        field_bytes(2, error(7, "x")),
    }


def conn_seeds():
    # Byte 0: read size - 1; byte 1: pre-Hello limit choice; byte 2: raw
    # mode (see conn.c). Then the stream a peer sends.
    hello = frame(envelope(1, 3, field_bytes(1, "token")))
    inv = frame(envelope(2, 5, invoke("echo", b"x" * 300, [("k", "v")])))
    ok = frame(envelope(3, 6, field_bytes(1, b"ab") + field_varint(4, 1)))
    return {
        "hello_then_big": bytes([255, 0, 0]) + hello + inv,
        "big_before_hello": bytes([255, 0, 0]) + inv + hello,
        "bytewise": bytes([0, 2, 0]) + hello + inv + ok,
        "raw": bytes([7, 2, 1]) + ok + inv + ok + hello,
        "undecodable": bytes([3, 1, 0]) + hello + frame(b"\xff\xff"),
        "no_body": bytes([3, 1, 1]) + frame(field_varint(1, 4)),
        "cut": bytes([16, 2, 0]) + hello + inv[:-1],
    }


def client_seeds():
    # Byte 0: read size - 1; byte 1: requests in flight (see client.c).
    # Then what the server answers.
    def ok(id_):
        return frame(envelope(id_, 18, field_varint(1, 1 << 20)))
    return {
        "answers": bytes([255, 3]) + ok(2) + ok(1) + ok(3),
        "bytewise": bytes([0, 2]) + ok(1) + ok(2),
        "error_answer": bytes([5, 1]) + frame(envelope(1, 2, error(4, "no"))),
        "goodbye": bytes([255, 2]) + ok(1) +
        frame(envelope(0, 2, error(11, "shutting down"))),
        "unknown_id": bytes([255, 2]) + ok(5),
        "too_many": bytes([255, 1]) + ok(1) + ok(1),
        "too_big": bytes([255, 1]) + b"\x7f\xff\xff\xff",
        "undecodable": bytes([255, 1]) + frame(b"\x08"),
        "cut": bytes([3, 2]) + ok(1) + ok(2)[:-2],
    }


def worker_conn_seeds():
    # Byte 0: read size - 1; byte 1: frame limit choice; byte 2: stall
    # pattern (see worker_conn.c). Then the server's requests.
    inv = frame(envelope(7, 5, invoke("echo", b"hello", [("x-a", "1")])))
    big = frame(envelope(8, 5, invoke("echo", b"z" * 1500)))
    batch = frame(envelope(9, 43, invoke_batch("sum", [
        batch_item(b"r1", [("k", b"v"), ("nv", None)]), batch_item(b"")])))
    load = frame(envelope(2, 19, field_bytes(1, "fn") + field_varint(2, 4) +
                          field_bytes(3, "/fn.so")))
    return {
        "calls": bytes([255, 2, 0]) + load + inv + batch + inv,
        "stalls": bytes([30, 2, 0x55]) + inv + batch + inv + batch,
        "big_frame": bytes([200, 3, 0x02]) + inv + big + inv,
        "over_limit": bytes([255, 1, 0]) + inv + big,
        "bytewise": bytes([0, 2, 0x81]) + inv + batch,
        "undecodable": bytes([9, 2, 0]) + inv + frame(b"\x0a\x05"),
        "cut": bytes([9, 2, 0]) + inv + batch[:-1],
    }


def main():
    write("worker_conn", worker_conn_seeds())
    write("conn", conn_seeds())
    write("client", client_seeds())
    write("frame", frame_seeds())
    write("wire", wire_seeds())
    write("batch", batch_seeds())
    write("answer", answer_seeds())
    return 0


if __name__ == "__main__":
    sys.exit(main())
