"""Small helpers shared by the analyzers of the non-pickle model formats (Keras, ONNX, safetensors, GGUF,
TensorFlow): stream size and hash, the inventory record, and the "could not be fully analysed" finding."""

from __future__ import annotations

import hashlib
import io
from typing import BinaryIO

from sas.scan.artifact import VirtualFile
from sas.scan.context import ScanContext
from sas.scan.findings import Component, make_finding
from sas.scan.rules import FORMAT_MISMATCH, INCOMPLETE_MODEL
from sas.taxonomy import Severity

_CHUNK = 1024 * 1024
# Suffixes whose content the archive walker already checks (SAS-SCAN-003) for files no analyzer consumed;
# reporting them here too would double the finding.
_WALKER_CHECKED = (".keras", ".gguf", ".h5", ".hdf5", ".safetensors")


def stream_size(stream: BinaryIO) -> int:
    """Size of a seekable stream (the real, decompressed size; ``VirtualFile.size`` may be compressed)."""
    here = stream.tell()
    end = stream.seek(0, io.SEEK_END)
    stream.seek(here)
    return end


def sha256_of(stream: BinaryIO) -> str:
    """Hex SHA-256 of a seekable stream from its start, in bounded chunks; leaves the stream at its end."""
    stream.seek(0)
    digest = hashlib.sha256()
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def record_model(ctx: ScanContext, file: VirtualFile, fmt: str, stream: BinaryIO, size: int) -> None:
    """Add ``file`` to the inventory as a model of format ``fmt``."""
    ctx.component(
        Component(kind="model", name=file.name, path=file.path, format=fmt, sha256=sha256_of(stream), size=size)
    )


def incomplete(ctx: ScanContext, file: VirtualFile, fmt: str, reason: str, *, evidence: str = "") -> None:
    """A model file we could not read to the end: never passed silently (SAS-SCAN-001)."""
    ctx.add(
        make_finding(
            INCOMPLETE_MODEL,
            file.path,
            f"{fmt} model could not be fully analysed: {reason}",
            evidence=evidence or reason[:200],
        )
    )


def mismatch(ctx: ScanContext, file: VirtualFile, fmt: str, reason: str) -> None:
    """A file named like ``fmt`` whose content is not ``fmt`` (SAS-SCAN-003)."""
    if file.name.lower().endswith(_WALKER_CHECKED):
        return
    ctx.add(
        make_finding(
            FORMAT_MISMATCH,
            file.path,
            f"{file.name} is named like a {fmt} file but its content is not {fmt}: {reason}",
            evidence=file.head[:16].hex(),
            severity=Severity.MEDIUM,
        )
    )
