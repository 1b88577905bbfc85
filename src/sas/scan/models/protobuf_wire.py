"""A minimal, bounded reader for the protobuf wire format, used by the ONNX and TensorFlow analyzers.

Why not the ``onnx`` or ``tensorflow`` packages: TensorFlow is ~500 MB and must not be needed to scan a
SavedModel (modelscan exits 2 without it); ``onnx`` (~15 MB) parses a whole ``ModelProto`` into memory, so a
2 GB model with inline weights costs 2 GB or more. The checks here only need a few fields (op names, domains,
external-data entries, constant strings), so this reader walks the wire format over a seekable stream and
*skips* length-delimited fields it does not need by seeking: memory stays at one small buffer window whatever
the model size, and nothing in the file is ever run. Field numbers are read against the public ``.proto``
schemas (onnx.proto3, tensorflow/core/framework/*.proto), cited where they are used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

VARINT = 0
FIXED64 = 1
LEN = 2
FIXED32 = 5

_WINDOW = 64 * 1024


class WireError(ValueError):
    """The bytes are not valid protobuf wire format (truncated, bad tag, field running past its parent)."""


class Field(NamedTuple):
    number: int
    wire_type: int
    value: int  # varint / fixed value; for LEN fields the payload length
    offset: int  # where the payload starts (LEN fields) or the value's position


class WireReader:
    """Random-access reader over ``stream`` (seekable, ``size`` bytes) with one buffered window."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream = stream
        self.size = size
        self._base = 0
        self._buf = b""

    def _window(self, pos: int, need: int) -> tuple[bytes, int]:
        """The buffer and ``pos``'s index in it, holding at least ``need`` bytes from ``pos`` (fewer at EOF)."""
        rel = pos - self._base
        if rel < 0 or rel + need > len(self._buf):
            self._stream.seek(pos)
            data = self._stream.read(max(need, _WINDOW))
            self._buf = data if isinstance(data, bytes) else b""
            self._base = pos
            rel = 0
        return self._buf, rel

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise WireError(f"read of {length} bytes at {offset} runs past the end ({self.size})")
        if length > _WINDOW:
            self._stream.seek(offset)
            data = self._stream.read(length)
            if len(data) != length:
                raise WireError(f"short read at {offset}")
            return data
        buf, rel = self._window(offset, length)
        data = buf[rel : rel + length]
        if len(data) != length:
            raise WireError(f"short read at {offset}")
        return data

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        """Decode a varint at ``pos``; return (value, next position)."""
        buf, rel = self._window(pos, 10)
        result = 0
        shift = 0
        for i in range(10):
            if pos + i >= end or rel + i >= len(buf):
                raise WireError(f"truncated varint at {pos}")
            byte = buf[rel + i]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result, pos + i + 1
            shift += 7
        raise WireError(f"varint longer than 10 bytes at {pos}")

    def fields(self, start: int, end: int) -> Iterator[Field]:
        """The fields of the message occupying [start, end). LEN payloads are not read, only located."""
        if end > self.size:
            raise WireError(f"message runs past the end of the file ({end} > {self.size})")
        pos = start
        while pos < end:
            tag, pos = self.varint(pos, end)
            number, wire_type = tag >> 3, tag & 7
            if number == 0:
                raise WireError(f"field number 0 at {pos}")
            if wire_type == VARINT:
                value, nxt = self.varint(pos, end)
                yield Field(number, wire_type, value, pos)
                pos = nxt
            elif wire_type == LEN:
                length, payload = self.varint(pos, end)
                if payload + length > end:
                    raise WireError(f"field {number} ({length} bytes at {payload}) runs past its message")
                yield Field(number, wire_type, length, payload)
                pos = payload + length
            elif wire_type in (FIXED64, FIXED32):
                width = 8 if wire_type == FIXED64 else 4
                if pos + width > end:
                    raise WireError(f"truncated fixed field {number} at {pos}")
                yield Field(number, wire_type, int.from_bytes(self.read(pos, width), "little"), pos)
                pos += width
            else:  # 3/4 are proto2 groups, unused by ONNX and TensorFlow; 6/7 do not exist
                raise WireError(f"unsupported wire type {wire_type} for field {number} at {pos}")

    def text(self, field: Field, cap: int = 4096) -> str:
        """A LEN field as text, cut at ``cap`` bytes (names and paths; never tensor payloads)."""
        data = self.read(field.offset, min(field.value, cap))
        return data.decode("utf-8", "replace")

    def message_end(self, field: Field) -> int:
        return field.offset + field.value


def looks_like_message(head: bytes, first_fields: dict[int, int]) -> bool:
    """Whether ``head`` starts with one of the (field number -> wire type) tags in ``first_fields``,
    decoding its value without running past ``head``. A cheap content check before a full parse."""
    if not head:
        return False
    tag = head[0]
    if tag & 0x80:  # field numbers above 15 in the first tag: none of our formats start so
        return False
    number, wire_type = tag >> 3, tag & 7
    return first_fields.get(number) == wire_type
