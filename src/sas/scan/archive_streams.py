"""Byte streams behind the virtual tree: decompressors, counted reads, slices of a shared file.

Every byte the walker decompresses goes through :class:`CountingReader`, which charges it to a
:class:`Budget` as it is *produced* (headers that declare sizes are never trusted), so a zip, tar or gzip
bomb stops at the configured limit with a finding instead of exhausting memory or time.

Decompressors: the standard library covers gzip, bzip2, xz, legacy lzma ("alone") and raw zlib streams;
``lz4`` (frame format, used by joblib) and ``zstandard`` (zstd container layers) are optional imports from
the ``scan`` extra, chosen because they are the reference bindings of those formats and small wheels. When
one is missing, opening such a stream raises :class:`UnsupportedCompression` and the walker reports the
content as not analysed.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from typing import BinaryIO, cast

from sas.scan.context import ScanContext
from sas.scan.magic import Kind

CHUNK = 64 * 1024


class ArchiveLimitError(OSError):
    """A scan limit was crossed while reading; the walker has already recorded the finding."""


class CorruptStreamError(OSError):
    """Compressed or archived data is corrupt or truncated."""


class UnsupportedCompression(OSError):
    """The stream uses a compressor whose library is not installed."""


# What decompressors and archive readers raise on bad input (gzip.BadGzipFile is an OSError).
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    ValueError,
    zlib.error,
    lzma.LZMAError,
    zipfile.BadZipFile,
    tarfile.TarError,
    struct.error,
    RuntimeError,  # lz4 and zstandard raise their own RuntimeError subclasses
)

LimitReporter = Callable[[str, str, str], None]  # (path, message, evidence)
CorruptReporter = Callable[[str, str], None]  # (path, reason)


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Ledger:
    """How many bytes of one stream were already charged: re-reading a member (a second analyzer, a seek
    back) costs time but is not more content, so only bytes past the furthest point reached count again."""

    __slots__ = ("charged",)

    def __init__(self) -> None:
        self.charged = 0


class Budget:
    """Bytes produced by decompression in this scan, checked against ``ScanSettings.limits``."""

    def __init__(self, ctx: ScanContext, report: LimitReporter) -> None:
        self.ctx = ctx
        self.limits = ctx.settings.limits
        self._report = report

    def exhausted(self) -> bool:
        return self.ctx.total_bytes_seen > self.limits.max_total_bytes

    def charge(self, path: str, produced: int, compressed: int | None, ledger: Ledger) -> None:
        """Account the bytes of a stream that has now produced ``produced`` bytes; raise past a limit."""
        limits = self.limits
        if produced > ledger.charged:
            self.ctx.total_bytes_seen += produced - ledger.charged
            ledger.charged = produced
        if self.ctx.total_bytes_seen > limits.max_total_bytes:
            self._fail(
                path,
                f"decompressing {path} took the scan past its limit of {limits.max_total_bytes} uncompressed bytes",
                f"total>{limits.max_total_bytes}",
            )
        if produced > limits.max_file_bytes:
            self._fail(
                path,
                f"{path} decompresses to more than {limits.max_file_bytes} bytes",
                f"size>{limits.max_file_bytes}",
            )
        ratio_judged = compressed is not None and produced > limits.ratio_floor
        if ratio_judged and produced > limits.max_ratio * max(compressed or 0, 1):
            self._fail(
                path,
                f"{path} expands more than {limits.max_ratio:g} times ({compressed} compressed bytes gave "
                f"{produced} and counting)",
                f"ratio>{limits.max_ratio:g}",
            )

    def refuse(self, path: str) -> None:
        """Raise for a stream opened after the scan's byte budget ran out (reported at its own path)."""
        limit = self.limits.max_total_bytes
        self._fail(path, f"{path} was not read: the scan already decompressed its limit of {limit} bytes", "total")

    def _fail(self, path: str, message: str, evidence: str) -> None:
        self._report(path, message, evidence)
        raise ArchiveLimitError(message)


class CountingReader(io.RawIOBase):
    """Reads ``inner`` and charges every byte it yields to ``budget``; decoder errors become
    :class:`CorruptStreamError` (reported through ``on_corrupt`` once)."""

    def __init__(
        self,
        inner: BinaryIO,
        budget: Budget,
        path: str,
        compressed_size: int | None,
        on_corrupt: CorruptReporter | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        super().__init__()
        self._ledger = ledger or Ledger()
        self._inner = inner
        self._budget = budget
        self._path = path
        self._compressed = compressed_size
        self._on_corrupt = on_corrupt
        self.produced = 0
        self.finished = False  # reached the end of the stream without an error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._budget.exhausted():
            self._budget.refuse(self._path)
        try:
            data = self._inner.read(len(buffer))
        except (ArchiveLimitError, CorruptStreamError):
            raise
        except DECODE_ERRORS as exc:
            reason = describe(exc)
            if self._on_corrupt is not None:
                self._on_corrupt(self._path, reason)
            raise CorruptStreamError(f"{self._path}: {reason}") from exc
        n = len(data)
        buffer[:n] = data
        if n == 0:
            self.finished = True
            return 0
        self.produced += n
        self._budget.charge(self._path, self.produced, self._compressed, self._ledger)
        return n

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


class ZlibReader(io.RawIOBase):
    """One raw zlib stream (RFC 1950), as joblib writes with ``compress=("zlib", n)``."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._dec = zlib.decompressobj()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = len(buffer)
        if want == 0:
            return 0
        while not self._dec.eof:
            data_in = self._dec.unconsumed_tail
            if not data_in:
                data_in = self._raw.read(CHUNK)
                if not data_in:
                    raise EOFError("zlib stream ended before its end marker")
            out = self._dec.decompress(data_in, want)
            if out:
                buffer[: len(out)] = out
                return len(out)
        return 0

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


class Slice(io.RawIOBase):
    """``length`` bytes of a seekable stream from ``start``; seekable; may share the stream with others
    (it seeks before every read, as zipfile's shared file does)."""

    def __init__(self, source: BinaryIO, start: int, length: int, *, owns: bool) -> None:
        super().__init__()
        self._src = source
        self._start = start
        self._length = length
        self._pos = 0
        self._owns = owns

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._length - self._pos)
        if want <= 0:
            return 0
        self._src.seek(self._start + self._pos)
        data = self._src.read(want)
        if not data:
            raise CorruptStreamError(f"data ends {self._length - self._pos} bytes early (truncated)")
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        try:
            if self._owns:
                self._src.close()
        finally:
            super().close()


class Prefixed(io.RawIOBase):
    """Bytes already read (``prefix``) followed by the rest of ``rest``."""

    def __init__(self, prefix: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self._prefix = memoryview(prefix)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._rest.close()
        finally:
            super().close()


def buffered(raw: io.RawIOBase) -> BinaryIO:
    return cast(BinaryIO, io.BufferedReader(raw, CHUNK))


def skip(stream: BinaryIO, count: int) -> None:
    """Read and discard ``count`` bytes (forward seek on a stream that cannot seek)."""
    while count > 0:
        chunk = stream.read(min(count, 1024 * 1024))
        if not chunk:
            raise CorruptStreamError("stream ended early (truncated)")
        count -= len(chunk)


def open_decompressor(kind: Kind, raw: BinaryIO) -> BinaryIO:
    """A stream of the decompressed bytes of ``raw`` (which it owns and closes)."""
    if kind is Kind.GZIP:
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    if kind is Kind.BZIP2:
        return cast(BinaryIO, bz2.BZ2File(raw, "rb"))
    if kind is Kind.XZ:
        return cast(BinaryIO, lzma.LZMAFile(raw, "rb", format=lzma.FORMAT_XZ))
    if kind is Kind.LZMA:
        return cast(BinaryIO, lzma.LZMAFile(raw, "rb", format=lzma.FORMAT_ALONE))
    if kind is Kind.ZLIB:
        return buffered(ZlibReader(raw))
    if kind is Kind.LZ4:
        try:
            import lz4.frame
        except ImportError:
            raw.close()
            raise UnsupportedCompression(
                "lz4 support is not installed (pip install 'serverless-ai-shield[scan]')"
            ) from None
        return cast(BinaryIO, lz4.frame.LZ4FrameFile(raw, mode="rb"))
    if kind is Kind.ZSTD:
        try:
            import zstandard
        except ImportError:
            raw.close()
            raise UnsupportedCompression(
                "zstd support is not installed (pip install 'serverless-ai-shield[scan]')"
            ) from None
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=True)
        return cast(BinaryIO, reader)
    raw.close()
    raise UnsupportedCompression(f"not a compressed stream: {kind}")


# GzipFile and the lzma/bz2 readers close a file object handed to them only when they opened it; make sure
# closing the decompressor also closes the underlying stream.
class _Owning(io.RawIOBase):
    def __init__(self, outer: BinaryIO, inner: BinaryIO) -> None:
        super().__init__()
        self._outer = outer
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._outer.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._outer.close()
            self._inner.close()
        finally:
            super().close()


def decompressed(
    kind: Kind,
    raw: BinaryIO,
    budget: Budget,
    path: str,
    compressed_size: int | None,
    on_corrupt: CorruptReporter | None = None,
    ledger: Ledger | None = None,
) -> BinaryIO:
    """``raw`` decompressed as ``kind``, counted against ``budget``; closing it closes ``raw``."""
    inner = open_decompressor(kind, raw)
    counting = CountingReader(buffered(_Owning(inner, raw)), budget, path, compressed_size, on_corrupt, ledger)
    return buffered(counting)


class Limited(io.RawIOBase):
    """The next ``length`` bytes of ``stream`` (which it owns); fewer means the container was truncated."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        super().__init__()
        self._src = stream
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._left)
        if want <= 0:
            return 0
        data = self._src.read(want)
        if not data:
            raise CorruptStreamError(f"data ends {self._left} bytes early (truncated)")
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        try:
            self._src.close()
        finally:
            super().close()


class RawDeflateReader(ZlibReader):
    """A raw deflate stream (zip method 8), for members read from local headers."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(raw)
        self._dec = zlib.decompressobj(-15)


class SharedSource:
    """One seekable source shared by the members of an archive (each read seeks first); reopened when a
    member is read after the walk has moved on and closed it."""

    def __init__(self, opener: Callable[[], BinaryIO]) -> None:
        self._opener = opener
        self._stream: BinaryIO | None = None

    def get(self) -> BinaryIO:
        if self._stream is None or self._stream.closed:
            self._stream = self._opener()
        return self._stream

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
