"""Integrity-manifest throughput: ``sas`` build and verify next to coreutils ``sha256sum`` on the same files.

Builds a function-package-like tree in a temporary folder (default ~1.5 GB: a few large model files and a few
thousand small code files), warms the page cache so that every tool reads from memory, then prints GB/s for:
``sha256sum`` (one process, as people run it, and ``xargs -P <cores>``), ``build_manifest`` and ``verify_tree``
with SHA-256 (the default), and the faster optional digests (blake2b from the stdlib, blake3 when installed).
It also prints the verification cost in seconds per GB, the figure a cold start pays.

    .venv/bin/python benchmarks/manifest.py [--gb 1.5] [--repeat 2] [--keep]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from sas import integrity

GB = 1024**3
MB = 1024**2


def make_tree(root: Path, total_bytes: int) -> tuple[int, int]:
    block = os.urandom(64 * MB)
    large = [0.3, 0.2, 0.15, 0.1, 0.1]  # fractions of the total in single big "model" files
    files = 0
    written = 0
    for i, share in enumerate(large):
        size = int(total_bytes * share)
        path = root / "models" / f"model_{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            left = size
            fh.write(i.to_bytes(8, "little"))
            while left > 0:
                chunk = block[: min(left, len(block))]
                fh.write(chunk)
                left -= len(chunk)
        files += 1
        written += size + 8
    small_total = total_bytes - written
    small_size = 24 * 1024
    n_small = max(1, small_total // small_size)
    for j in range(n_small):
        path = root / "python" / f"pkg{j // 200}" / f"mod_{j}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(j.to_bytes(8, "little") + block[:small_size])
        files += 1
        written += small_size + 8
    return files, written


def warm(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as fh:
                while fh.read(8 * MB):
                    pass


REPEAT = 1


def _cpu() -> float:
    """CPU seconds of this process (all threads) and of its finished children."""
    own = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + children.ru_utime + children.ru_stime


def timed(fn: object) -> tuple[float, float]:
    """(wall, CPU) seconds, best of REPEAT runs: other work on a shared machine only ever adds time.

    CPU seconds say what the hashing costs whatever else runs: GB per CPU-second times the cores is what an
    idle machine would reach.
    """
    best = (float("inf"), float("inf"))
    for _ in range(REPEAT):
        wall, cpu = time.perf_counter(), _cpu()
        fn()  # type: ignore[operator]
        best = min(best, (time.perf_counter() - wall, _cpu() - cpu))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.5, help="size of the tree in GiB")
    parser.add_argument("--keep", action="store_true", help="keep the temporary tree")
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs for each figure")
    args = parser.parse_args()
    global REPEAT  # noqa: PLW0603 - a script-wide setting
    REPEAT = max(1, args.repeat)

    tmp = Path(tempfile.mkdtemp(prefix="sas-manifest-bench-"))
    root = tmp / "package"
    root.mkdir()
    try:
        files, size = make_tree(root, int(args.gb * GB))
        warm(root)
        gb = size / GB
        cores = os.cpu_count() or 1
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"tree: {files} files, {gb:.2f} GiB ({root}); {cores} cores; page cache warm; load {load:.1f}")
        rows: list[tuple[str, tuple[float, float]]] = []

        if shutil.which("sha256sum"):
            cmd = f"find {root} -type f -print0 | xargs -0 sha256sum > /dev/null"
            rows.append(
                ("sha256sum (coreutils, 1 process)", timed(lambda: subprocess.run(cmd, shell=True, check=True)))
            )
            cmd_p = f"find {root} -type f -print0 | xargs -0 -n 64 -P {cores} sha256sum > /dev/null"
            rows.append((f"sha256sum (xargs -P {cores})", timed(lambda: subprocess.run(cmd_p, shell=True, check=True))))

        key = integrity.generate_private_key()
        algorithms = ["sha256", "blake2b"]
        try:
            import blake3  # noqa: F401

            algorithms.append("blake3")
        except ImportError:
            print("(blake3 not installed: pip install blake3 for the fastest digest)")
        verify_seconds: dict[str, tuple[float, float]] = {}
        for algorithm in algorithms:
            manifest_path = tmp / f"manifest-{algorithm}.json"
            build = timed(
                lambda a=algorithm, m=manifest_path: integrity.build_manifest(root, key, algorithm=a).write(m)
            )
            rows.append((f"sas manifest build ({algorithm})", build))
            reports: list[integrity.IntegrityReport] = []
            verify = timed(
                lambda m=manifest_path, out=reports: out.append(integrity.verify_tree(root, m, key.public_key()))
            )
            assert reports[0].ok, reports[0].problems()
            rows.append((f"sas manifest verify ({algorithm})", verify))
            verify_seconds[algorithm] = verify
        single = timed(lambda: integrity.build_manifest(root, key, workers=1))
        rows.append(("sas manifest build (sha256, 1 thread)", single))

        width = max(len(name) for name, _ in rows)
        print(f"{'':{width}}   wall s    GB/s   CPU s  GB/CPU-s")
        for name, (wall, cpu) in rows:
            print(f"{name:{width}}  {wall:7.2f}  {gb / wall:6.2f}  {cpu:6.2f}  {gb / cpu if cpu else 0:8.2f}")
        for algorithm, (wall, cpu) in verify_seconds.items():
            print(f"verification cost ({algorithm}): {wall / gb:.2f} s per GiB wall, {cpu / gb:.2f} CPU-s per GiB")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
