"""Content sniffing: what a file is, from its first bytes. Extensions are hints, never proof."""

from __future__ import annotations

import io
import pickletools
import re
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
ARCHIVES = frozenset({Kind.ZIP, Kind.TAR})

# Two-byte zlib headers and the lzma "alone" header occur by chance in ordinary files. When content sniffed
# by one of these does not decompress, it is a plain file, not a corrupt archive; the other magics are
# long enough that a failure to decode means a damaged or hostile file.
WEAK = frozenset({Kind.ZLIB, Kind.LZMA})

_TAR_BLOCK = 512

# Opcodes that may open a protocol 0/1 pickle (no PROTO header). Kept narrow: text files rarely start so.
_PROTO01_FIRST = frozenset(b"(]}cI")


def sniff(head: bytes) -> Kind:
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return Kind.ZIP
    if (len(head) >= 262 and head[257:262] == b"ustar") or is_v7_tar_header(head):
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
    if head.startswith(b"ZF0x"):  # joblib's old z-file: a hex length, then a zlib-compressed pickle
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
    if _looks_like_lzma_alone(head):
        return Kind.LZMA
    if head[:1] and (
        (len(head) >= _HEAD_BYTES and head[0] in _PROTO01_FIRST and looks_like_old_pickle(head))
        or parses_as_headerless_pickle(head)
    ):
        return Kind.PICKLE
    return Kind.UNKNOWN


def looks_like_old_pickle(head: bytes) -> bool:
    """Protocol 0/1 pickles have no header; accept the first bytes only if they parse as pickle opcodes
    that start a real object (a global, a mark, a list or dict), so that text never passes.

    A GLOBAL needs two newline-terminated lines (``cmodule\nname\n``): a one-word text file such as a
    dist-info ``top_level.txt`` holding ``certifi`` is not a pickle.
    """
    if _OLD_GLOBAL.match(head) or _OLD_START.match(head):
        return True
    return head[:3] in (b"]q\x00", b"}q\x00") or head[:2] in (b"((", b"(t")


# Every opcode byte of protocols 0-5; a file whose first byte is none of these cannot be a pickle.
_OPCODE_BYTES = frozenset(op.code.encode("latin-1") for op in pickletools.opcodes)
_HEAD_BYTES = 512  # what the walker hands to sniff(); a shorter head is the whole file
_MIN_OPCODES = 8  # a head that runs out of bytes must have parsed this many opcodes to count


def parses_as_headerless_pickle(head: bytes) -> bool:
    """A protocol 0/1 pickle may open with any opcode (``I1\n0cos\nsystem\n...`` evades the fixed openings
    above), so validate the head as pickle code: opcodes, arguments, stack and memo discipline. Text fails
    within a few bytes (``import os`` is an INST without a mark). A whole file must reach STOP; a head cut
    short by its window counts when it parsed cleanly for a while, and a head that is plain text must parse
    with text (protocol 0) opcodes only — binary opcodes take length bytes from letters and would let
    ordinary text through.
    """
    if head[:1] not in _OPCODE_BYTES or head[:1] == b"\x80":
        return False
    try:
        pickletools.dis(head, out=_NullWriter())
    except (ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError, OverflowError) as exc:
        if len(head) < _HEAD_BYTES or not _ran_out(str(exc)):
            return False
    text = all(32 <= b < 127 or b in b"\t\n\r" for b in head)
    count = 0
    try:
        for op, arg, _ in pickletools.genops(head):
            if text and op.proto > 0:
                return False
            if op.name in ("GLOBAL", "INST") and not _GLOBAL_ARG.fullmatch(str(arg)):
                return False
            count += 1
    except ValueError:
        pass
    return count >= _MIN_OPCODES or head.rstrip().endswith(b".")


def _ran_out(message: str) -> bool:
    return any(s in message for s in ("exhausted", "but only", "no newline", "remain"))


class _NullWriter(io.StringIO):
    def write(self, _: str) -> int:
        return 0


_IDENT = rb"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_GLOBAL_ARG = re.compile(_IDENT.decode() + " " + _IDENT.decode())
_OLD_GLOBAL = re.compile(rb"\(?c" + _IDENT + rb"\n" + _IDENT + rb"\n")
_OLD_START = re.compile(rb"\((?:dp\d+\n|lp\d+\n|i" + _IDENT + rb"\n" + _IDENT + rb"\n|S'|V|I-?\d+\n|F-?\d)")


def is_v7_tar_header(head: bytes) -> bool:
    """A tar header without the ``ustar`` magic (old v7 archives), recognised by its checksum field."""
    if len(head) < _TAR_BLOCK or not head[0] or head[:_TAR_BLOCK].count(0) == _TAR_BLOCK:
        return False
    field = head[148:156].replace(b"\x00", b" ").strip()
    if not field or any(ch not in b"01234567" for ch in field):
        return False
    expected = int(field, 8)
    block = head[:_TAR_BLOCK]
    unsigned = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
    return expected == unsigned


def _looks_like_lzma_alone(head: bytes) -> bool:
    """The 13-byte header of a legacy ``.lzma`` stream: the default properties byte, a dictionary size
    that is a power of two (or 3 * 2^n, as xz writes), and a plausible uncompressed size (or "unknown")."""
    if len(head) < 13 or head[0] != 0x5D:
        return False
    dict_size = int.from_bytes(head[1:5], "little")
    if dict_size < 4096 or not any(dict_size in (1 << n, 3 << n) for n in range(12, 31)):
        return False
    size = head[5:13]
    return size == b"\xff" * 8 or int.from_bytes(size, "little") < (1 << 48)


def compression_suffixes() -> dict[str, str]:
    """File-name suffixes of single-stream compressors and what the decompressed file is called."""
    return dict(_SUFFIXES)


_SUFFIXES = {
    ".tgz": ".tar",
    ".tbz2": ".tar",
    ".tbz": ".tar",
    ".txz": ".tar",
    ".tzst": ".tar",
    ".gz": "",
    ".gzip": "",
    ".z": "",
    ".zlib": "",
    ".bz2": "",
    ".xz": "",
    ".lzma": "",
    ".lz4": "",
    ".zst": "",
    ".zstd": "",
}
