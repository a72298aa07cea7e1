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


def main():
    write("frame", frame_seeds())
    return 0


if __name__ == "__main__":
    sys.exit(main())
