"""Walk large archives and print time and peak memory: the virtual tree must not hold an archive in memory.

Builds its own inputs in a temporary folder (about 1 GiB each, removed afterwards):

- ``pkg.tar``: 16 members of 64 MiB (random bytes, so nothing compresses);
- ``pkg.tar.gz``: the same tar, gzip level 1;
- ``fn.zip``: the same members, deflated;
- ``bomb.zip`` and ``bomb.gz``: 1 GiB of zeros each (rejected by the default limits).

Each walk runs in a fresh subprocess with an analyzer that hashes every file in 1 MiB chunks (what a
streaming analyzer does), and reports wall time and the process's peak resident memory (``VmHWM``).

Run: ``.venv/bin/python benchmarks/walk_archives.py [--size-mib 1024]``
"""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

MiB = 1024 * 1024

CHILD = r"""
import hashlib, sys, time
from sas.scan.analyzer import Analyzer
from sas.scan.engine import scan

class Hasher(Analyzer):
    name = "hasher"
    def claims(self, file): return True
    def analyze(self, file, ctx):
        h = hashlib.sha256()
        with file.open() as stream:
            while chunk := stream.read(1 << 20):
                h.update(chunk)
        return False

start = time.perf_counter()
result = scan(sys.argv[1], analyzers=[Hasher()])
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
rules = sorted({f.rule_id for f in result.findings})
print(f"{seconds:.2f}\t{peak:.0f}\t{result.stats.files}\t{','.join(rules) or '-'}")
"""


def build(folder: Path, size_mib: int) -> list[Path]:
    members = max(1, size_mib // 64)
    block = os.urandom(64 * MiB)
    tar_path = folder / "pkg.tar"
    with tarfile.open(tar_path, "w") as tar:
        for i in range(members):
            info = tarfile.TarInfo(f"layer/weights{i:02d}.bin")
            info.size = len(block)
            tar.addfile(info, _Reader(block))
    gz_path = folder / "pkg.tar.gz"
    with tar_path.open("rb") as src, gzip.open(gz_path, "wb", compresslevel=1) as dst:
        while chunk := src.read(8 * MiB):
            dst.write(chunk)
    zip_path = folder / "fn.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for i in range(members):
            with zf.open(f"python/weights{i:02d}.bin", "w", force_zip64=True) as out:
                out.write(block)
    del block
    zeros = bytes(MiB)
    bomb_zip = folder / "bomb.zip"
    with zipfile.ZipFile(bomb_zip, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros", "w", force_zip64=True) as out:
        for _ in range(size_mib):
            out.write(zeros)
    bomb_gz = folder / "bomb.gz"
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    with bomb_gz.open("wb") as fh:
        for _ in range(size_mib):
            fh.write(compressor.compress(zeros))
        fh.write(compressor.flush())
    return [tar_path, gz_path, zip_path, bomb_zip, bomb_gz]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)

    def read(self, n: int = -1) -> bytes:
        n = len(self._view) if n < 0 else n
        out, self._view = self._view[:n], self._view[n:]
        return bytes(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        inputs = build(Path(tmp), args.size_mib)
        print(f"built inputs in {time.perf_counter() - started:.1f}s")
        print(f"{'input':<12} {'on disk':>10} {'seconds':>8} {'peak RSS':>9} {'files':>6}  findings")
        for path in inputs:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True
            ).stdout.strip()
            seconds, peak, files, rules = out.split("\t")
            size = path.stat().st_size / MiB
            print(f"{path.name:<12} {size:>7.0f} MiB {seconds:>8} {peak:>5} MiB {files:>6}  {rules}")


if __name__ == "__main__":
    main()
