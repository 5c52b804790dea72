#!/usr/bin/env python3
"""Calls runtime.v1.RuntimeService/Version (three times, one channel) on a CRI unix socket with grpcio (gRPC's C core), as
a Python, C++ or Ruby client would: the channel's target is unix://<socket>, and the :authority
is whatever grpcio sends for it (no grpc.default_authority). Prints the answer's fields as
key=value lines; exits non-zero with the gRPC error otherwise.

usage: grpcio_version.py SOCKET [TARGET]   (TARGET defaults to unix://SOCKET)

Messages are encoded by hand (strings only), so no code generation is needed.
"""

import sys

import grpc


def field(number, text):
    """A length-delimited protobuf field (wire type 2) holding `text`."""
    data = text.encode()
    out = bytearray([number << 3 | 2])
    n = len(data)
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            break
    return bytes(out) + data


def varint(buf, i):
    value, shift = 0, 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def decode_strings(buf):
    """The string fields of a message, by number (other wire types are skipped)."""
    fields, i = {}, 0
    while i < len(buf):
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 2:
            n, i = varint(buf, i)
            fields[number] = buf[i : i + n].decode()
            i += n
        elif wire == 0:
            _, i = varint(buf, i)
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return fields


VERSION_FIELDS = {1: "version", 2: "runtime_name", 3: "runtime_version", 4: "runtime_api_version"}


def main():
    socket = sys.argv[1]
    target = sys.argv[2] if len(sys.argv) > 2 else f"unix://{socket}"
    with grpc.insecure_channel(target) as channel:
        version = channel.unary_unary(
            "/runtime.v1.RuntimeService/Version",
            request_serializer=None,
            response_deserializer=None,
        )
        # Three calls on one connection: the later ones carry the authority as an index into
        # the connection's header compression table.
        answers = []
        for _ in range(3):
            try:
                answers.append(version(field(1, "v1"), timeout=10))
            except grpc.RpcError as e:
                print(f"error: {e.code()}: {e.details()}", file=sys.stderr)
                return 1
    if len(set(answers)) != 1:
        print(f"error: the answers differ: {answers}", file=sys.stderr)
        return 1
    for number, value in sorted(decode_strings(answers[0]).items()):
        print(f"{VERSION_FIELDS.get(number, number)}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
