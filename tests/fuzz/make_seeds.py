#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into tests/fuzz/corpus/NAME/.

Seeds are small valid inputs (and a few near misses) from which libFuzzer
starts; they are committed, and `make test` replays them. Run again after
changing a seed: `python3 tests/fuzz/make_seeds.py`. Inputs that once
crashed a target are not written here: they are kept as crash-* files in
the corpus by hand, with the commit that fixed them. The seeds of `elf` are cut from a function
built by the project (functions/echo.c), committed as they are.
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


def http_seeds():
    # Byte 0: read size - 1; byte 1: body limit (bits 0-1: 0, 16, 1024,
    # 1 MiB) and mode (bit 2: built requests); see http.c.
    inv = (b"POST /function/echo HTTP/1.1\r\nHost: h\r\n"
           b"X-Impulse-Deadline-Ms: 250\r\n"
           b"X-Impulse-Idempotency-Key: k-1\r\n"
           b"X-Impulse-Header-Trace: abc\r\n"
           b"Content-Length: 5\r\n\r\nhello")
    pub = (b"POST /topics/orders HTTP/1.1\r\nHost: h\r\n"
           b"Ce-Id: 1\r\nCe-Source: s\r\nCe-Type: t\r\n"
           b"Ce-Specversion: 1.0\r\nX-Impulse-Key: k\r\n"
           b"X-Impulse-Partition: 2\r\nContent-Type: text/plain\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    ce = (b'{"specversion":"1.0","id":"1","source":"s","type":"t",'
          b'"datacontenttype":"application/json","data":{"a":1},'
          b'"partitionkey":"pk","n":3,"b":true}')
    structured = (b"POST /topics/orders HTTP/1.1\r\n"
                  b"Content-Type: application/cloudevents+json; charset=utf-8"
                  b"\r\nContent-Length: " + str(len(ce)).encode() +
                  b"\r\n\r\n" + ce)
    gets = (b"GET /healthz HTTP/1.1\r\n\r\n"
            b"HEAD /metrics HTTP/1.1\r\n\r\n"
            b"GET /api/functions/echo/logs?limit=5 HTTP/1.1\r\n\r\n"
            b"GET /api/state HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"
            b"GET /readyz HTTP/1.1\r\n\r\n")
    expect = (b"POST /function/echo HTTP/1.1\r\nExpect: 100-continue\r\n"
              b"Content-Length: 2\r\n\r\nhi")
    many = b"GET /healthz HTTP/1.1\r\n" + b"".join(
        b"X-H%d: v\r\n" % i for i in range(130)) + b"\r\n"
    return {
        "invoke": bytes([255, 3]) + inv,
        "invoke_bytewise": bytes([0, 2]) + inv,
        "publish_binary_chunked": bytes([6, 3]) + pub,
        "publish_structured": bytes([255, 3]) + structured,
        "pipelined_gets": bytes([17, 2]) + gets,
        "expect_continue": bytes([255, 2]) + expect,
        "body_too_big": bytes([255, 1]) + inv,
        "too_many_headers": bytes([255, 3]) + many,
        "http09": bytes([255, 3]) + b"GET /\r\n\r\n",
        "http2": bytes([255, 3]) + b"GET / HTTP/2.0\r\n\r\n",
        "connect": bytes([255, 3]) + b"CONNECT h:1 HTTP/1.1\r\n\r\n",
        "bad_target": bytes([255, 3]) + b"GET * HTTP/1.1\r\n\r\n",
        "built": bytes([3, 6]) + b"abc\xffbody one\xffz9\xff\xffv\xff" +
        bytes(range(40)),
        "built_refused": bytes([255, 5]) + b"a\xffshort\xffb\xff" +
        b"a body longer than sixteen bytes",
    }


def cloudevents_seeds():
    # Byte 0 % 3: 0 structured event, 1 binary headers, 2 record (see
    # cloudevents.c).
    ev = (b'{"specversion":"1.0","id":"a1","source":"/s","type":"t.x",'
          b'"time":"2024-03-01T12:00:00Z","subject":"s1",'
          b'"datacontenttype":"text/plain","data":"hello",'
          b'"partitionkey":"pk","count":3,"ratio":0.5,"ok":false,"n":null}')
    ev64 = (b'{"specversion":"1.0","id":"a2","source":"/s","type":"t",'
            b'"data_base64":"aGVsbG8="}')
    evobj = (b'{"specversion":"1.0","id":"a3","source":"/s","type":"t",'
             b'"datacontenttype":"application/json","data":{"k":[1,2]}}')
    bin_ = b"\xff".join([b"Ce-Id", b"1", b"CE-SOURCE", b"/s", b"ce-type",
                          b"t", b"ce-PartitionKey", b"k", b"Content-Type",
                          b"text/plain", b"X-Impulse-Header-A", b"v",
                          b"X-Impulse-Partition", b"3", b"ce-", b"bare"])
    return {
        "structured": b"\x00" + ev,
        "structured_base64": b"\x00" + ev64,
        "structured_object": b"\x00" + evobj,
        "structured_missing": b"\x00" + b'{"id":"1"}',
        "structured_bad_name": b"\x00" + ev[:-1] + b',"Bad":"x"}',
        "binary": b"\x01" + bin_,
        "record_now": b"\x02" + struct.pack("<q", 1709294400042) +
        b"orders",
        "record_negative": b"\x02" + struct.pack("<q", -5) + b"t",
    }


def sim_trace_seeds():
    # Byte 0 % 4: at most that many functions (0: all); then a trace in the
    # Azure Functions 2019 format, and after a NUL byte a durations file.
    # Synthetic rows: hashes and counts made up here.
    header = "HashOwner,HashApp,HashFunction,Trigger," + ",".join(
        str(m) for m in range(1, 1441))

    def row(fn, counts):
        return ",".join([fn, "o1", "a1"] + [str(c) for c in counts])

    a = row("f1", [m % 3 for m in range(1440)])
    b = row("f2", [0] * 1439 + [1000000])
    c = row("f1", [1] * 1440)
    trace = "HashFunction," + header[26:] + "\n" + a + "\n" + b + "\r\n"
    durations = ("HashOwner,HashApp,HashFunction,Average,Count\n"
                 "o1,a1,f1,12.5,3\no1,a1,f2,0.2,1\no,a,zz,5,1\n")
    return {
        "trace": b"\x00" + trace.encode(),
        "trace_durations": b"\x00" + (trace + a.replace("f1", "f3") + "\n"
                                       ).encode() + b"\0" +
        durations.encode(),
        "limit_one": b"\x01" + (a + "\n" + c + "\n").encode(),
        "too_many_per_minute": b"\x00" + row("f", [1000001] * 1440).encode(),
        "short_row": b"\x00" + row("f", [1] * 10).encode(),
        "bad_durations": b"\x00" + a.encode() + b"\0" +
        b"HashFunction,Average\nf1,nan\n",
    }


def cli_args_seeds():
    # Byte 0 % 4: 0 publish lines (then delimiter length % 4 and its
    # bytes), 1 HOST:PORT, 2 duration or number, 3 bytes to escape.
    return {
        "lines": b"\x00\x01:" + b"k1:v1\n\nno key\r\nk:a:b\n:empty\nlast",
        "lines_nokey": b"\x00\x00" + b"one\ntwo\r\n\n",
        "lines_delim3": b"\x00\x03<=>" + b"a<=>b<=>c\nx<=\n",
        "hostport": b"\x01127.0.0.1:7070",
        "hostport_v6": b"\x01[::1]:9092",
        "duration": b"\x02250ms",
        "duration_days": b"\x02366d",
        "duration_over": b"\x02367d",
        "number": b"\x0218446744073709551615",
        "escape": b"\x03" + bytes(range(256)),
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
    write("cli_args", cli_args_seeds())
    write("sim_trace", sim_trace_seeds())
    write("cloudevents", cloudevents_seeds())
    write("frame", frame_seeds())
    write("http", http_seeds())
    write("worker_conn", worker_conn_seeds())
    write("conn", conn_seeds())
    write("client", client_seeds())
    write("wire", wire_seeds())
    write("batch", batch_seeds())
    write("answer", answer_seeds())
    return 0


if __name__ == "__main__":
    sys.exit(main())
