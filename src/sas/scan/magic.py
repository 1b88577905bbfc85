"""Content sniffing: what a file is, from its first bytes. Extensions are hints, never proof."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    ZIP = "zip"
    TAR = "tar"
    GZIP = "gzip"
    BZIP2 = "bzip2"
    XZ = "xz"
    LZMA = "lzma"  # legacy .lzma "alone" format (joblib's lzma compressor)
    LZ4 = "lz4"
    ZLIB = "zlib"
    ZSTD = "zstd"
    PICKLE = "pickle"
    NUMPY = "numpy"
    HDF5 = "hdf5"
    GGUF = "gguf"
    SAFETENSORS = "safetensors"
    UNKNOWN = "unknown"


COMPRESSED = frozenset({Kind.GZIP, Kind.BZIP2, Kind.XZ, Kind.LZMA, Kind.LZ4, Kind.ZLIB, Kind.ZSTD})

# Opcodes that may open a protocol 0/1 pickle (no PROTO header). Kept narrow: text files rarely start so.
_PROTO01_FIRST = frozenset(b"(]}cI")


def sniff(head: bytes) -> Kind:
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return Kind.ZIP
    if len(head) >= 262 and head[257:262] == b"ustar":
        return Kind.TAR
    if head.startswith(b"\x1f\x8b"):
        return Kind.GZIP
    if head.startswith(b"BZh") and len(head) > 3 and head[3:4].isdigit():
        return Kind.BZIP2
    if head.startswith(b"\xfd7zXZ\x00"):
        return Kind.XZ
    if head.startswith(b"\x04\x22\x4d\x18"):
        return Kind.LZ4
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return Kind.ZSTD
    if head.startswith(b"\x93NUMPY"):
        return Kind.NUMPY
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return Kind.HDF5
    if head.startswith(b"GGUF"):
        return Kind.GGUF
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return Kind.PICKLE
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < (1 << 27):
        return Kind.SAFETENSORS
    if (
        len(head) >= 2
        and head[0] == 0x78
        and head[1] in (0x01, 0x5E, 0x9C, 0xDA)
        and ((head[0] << 8) | head[1]) % 31 == 0
    ):
        return Kind.ZLIB
    if len(head) >= 13 and head[0] == 0x5D and head[1:3] == b"\x00\x00":
        return Kind.LZMA
    if head[:1] and head[0] in _PROTO01_FIRST and looks_like_old_pickle(head):
        return Kind.PICKLE
    return Kind.UNKNOWN


def looks_like_old_pickle(head: bytes) -> bool:
    """Protocol 0/1 pickles have no header; accept the first bytes only if they parse as pickle opcodes
    that start a real object (a global, a mark, a list or dict) and end in no text-like garbage."""
    if head.startswith(b"c") and b"\n" in head[:256]:
        module = head[1 : head.index(b"\n")]
        return bool(module) and all(
            ch in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_." for ch in module
        )
    return head[:2] in (b"(d", b"(l", b"(i", b"(c", b"(t", b"]q", b"}q", b"(d", b"((", b"(I", b"(S", b"(V")
