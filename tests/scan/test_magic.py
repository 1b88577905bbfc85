"""Content sniffing: kinds come from bytes, and weak magics do not fire on ordinary text."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import tarfile
import zipfile
import zlib

import lz4.frame
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sas.scan.magic import Kind, is_v7_tar_header, sniff


def _tar(fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        info = tarfile.TarInfo("a.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    return buf.getvalue()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a", b"a")
    return buf.getvalue()


def _v7_tar() -> bytes:
    """A tar header without the ustar magic, as pre-POSIX tools wrote."""
    block = bytearray(_tar(tarfile.USTAR_FORMAT)[:512])
    block[257:265] = bytes(8)
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block)


PICKLE = pickle.dumps({"a": 1}, protocol=4)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (_zip(), Kind.ZIP),
        (_tar(tarfile.USTAR_FORMAT), Kind.TAR),
        (_tar(tarfile.GNU_FORMAT), Kind.TAR),
        (_tar(tarfile.PAX_FORMAT), Kind.TAR),
        (_v7_tar(), Kind.TAR),
        (gzip.compress(PICKLE), Kind.GZIP),
        (bz2.compress(PICKLE), Kind.BZIP2),
        (lzma.compress(PICKLE), Kind.XZ),
        (lzma.compress(PICKLE, format=lzma.FORMAT_ALONE), Kind.LZMA),
        (zlib.compress(PICKLE, 1), Kind.ZLIB),
        (zlib.compress(PICKLE, 6), Kind.ZLIB),
        (zlib.compress(PICKLE, 9), Kind.ZLIB),
        (lz4.frame.compress(PICKLE), Kind.LZ4),
        (b"\x28\xb5\x2f\xfd\x00\x58", Kind.ZSTD),
        (PICKLE, Kind.PICKLE),
        (pickle.dumps([1, 2], protocol=0), Kind.PICKLE),
        (b"\x93NUMPY\x01\x00", Kind.NUMPY),
        (b"\x89HDF\r\n\x1a\n", Kind.HDF5),
        (b"GGUF\x03\x00\x00\x00", Kind.GGUF),
        ((20).to_bytes(8, "little") + b'{"__metadata__":{}}', Kind.SAFETENSORS),
        (b"", Kind.UNKNOWN),
        (b"def handler(event, context):\n", Kind.UNKNOWN),
    ],
)
def test_sniff(data: bytes, kind: Kind) -> None:
    assert sniff(data[:512]) is kind


def test_v7_checksum_rejects_damaged_header() -> None:
    block = bytearray(_v7_tar())
    assert is_v7_tar_header(bytes(block))
    block[0] ^= 0x01
    assert not is_v7_tar_header(bytes(block))
    assert not is_v7_tar_header(bytes(512))


def test_lzma_alone_needs_a_plausible_header() -> None:
    # 0x5D followed by zeros is how a lot of binary data starts; the dictionary size must be a real one.
    assert sniff(b"\x5d\x00\x00\x00\x00" + bytes(8)) is Kind.UNKNOWN
    assert sniff(b"\x5d\x00\x00\x80\x00" + b"\xff" * 8) is Kind.LZMA


PRINTABLE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126) | st.sampled_from("\n\t"), max_size=600)


@settings(max_examples=300, deadline=None)
@given(PRINTABLE)
def test_text_is_never_an_archive_or_strong_compressor(text: str) -> None:
    # Text may begin like the weak zlib magic ("x^") or a protocol-0 pickle ("(d", "cos\n"), nothing else.
    assert sniff(text.encode()[:512]) in {Kind.UNKNOWN, Kind.ZLIB, Kind.PICKLE}
