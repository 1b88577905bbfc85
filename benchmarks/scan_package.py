"""Full ``sas scan`` time and peak memory on a realistic ML function package.

Builds a function package the way ``pip install -t`` would leave it, by copying real installed distributions
(numpy, scipy, scikit-learn, joblib, threadpoolctl: their files and .dist-info with RECORD) out of this
environment, adds a handler, a requirements file and a large pickled model, then runs ``sas scan`` on it as a
subprocess, once on the folder and once on the zipped package, and prints wall time and the child's peak RSS.

Targets (issue 3): under 10 s and under 300 MB on a 2-core machine.

    .venv/bin/python benchmarks/scan_package.py [--model-mb 40] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from importlib import metadata
from pathlib import Path, PurePosixPath

import numpy as np

DISTRIBUTIONS = ("numpy", "scipy", "scikit-learn", "joblib", "threadpoolctl")


def copy_distribution(name: str, dest: Path) -> int:
    dist = metadata.distribution(name)
    total = 0
    for file in dist.files or ():
        rel = PurePosixPath(str(file))
        if ".." in rel.parts:
            continue
        src = Path(str(dist.locate_file(file)))
        if not src.is_file():
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out)
        total += out.stat().st_size
    return total


def build(root: Path, model_mb: int) -> int:
    root.mkdir(parents=True, exist_ok=True)
    size = sum(copy_distribution(name, root) for name in DISTRIBUTIONS)
    versions = {name: metadata.version(name) for name in DISTRIBUTIONS}
    (root / "requirements.txt").write_text("".join(f"{n}=={v}\n" for n, v in versions.items()))
    (root / "handler.py").write_text(
        "import json\nimport pickle\nfrom pathlib import Path\n\n"
        "WEIGHTS = pickle.loads((Path(__file__).parent / 'model.pkl').read_bytes())\n\n\n"
        "def handler(event, context):\n"
        "    x = json.loads(event['body'])['x']\n"
        "    return {'statusCode': 200, 'body': json.dumps({'y': float(WEIGHTS['w'][: len(x)] @ x)})}\n"
    )
    rng = np.random.default_rng(0)
    model = {"w": rng.standard_normal(model_mb * 1024 * 1024 // 4, dtype=np.float32), "classes": ["a", "b"]}
    with (root / "model.pkl").open("wb") as fh:
        pickle.dump(model, fh, protocol=4)
    return size + sum(p.stat().st_size for p in (root / "model.pkl", root / "handler.py"))


def zip_folder(root: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())


_CHILD = (
    "import sys\n"
    "from sas.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
    "print(f'VMHWM_KB {hwm}', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def run_scan(target: Path) -> tuple[float, float, float, int, str]:
    """Wall seconds, peak RSS in MB (getrusage of children, and the child's own VmHWM), exit code, summary line.

    ``RUSAGE_CHILDREN`` reports the largest child so far, so from the second run on it can only grow; the
    child's VmHWM (read from /proc just before it exits) is the per-run figure.
    """
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, "scan", str(target), "--no-progress", "--format", "table"],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if proc.returncode == 2:
        raise SystemExit(f"scan failed: {proc.stderr.strip()}")
    hwm = next((int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("VMHWM_KB")), 0)
    summary = next((line for line in reversed(proc.stdout.splitlines()) if "scanned in" in line), "")
    return seconds, children_mb, hwm / 1024, proc.returncode, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-mb", type=int, default=40, help="size of the pickled model (default 40)")
    parser.add_argument("--keep", type=Path, help="build the package here and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="sas-bench-"))
    try:
        root = work / "function"
        if root.exists():
            shutil.rmtree(root)
        started = time.perf_counter()
        size = build(root, args.model_mb)
        archive = work / "function.zip"
        zip_folder(root, archive)
        files = sum(1 for p in root.rglob("*") if p.is_file())
        print(
            f"package: {files} files, {size / 1e6:.0f} MB unzipped, {archive.stat().st_size / 1e6:.0f} MB zipped "
            f"({', '.join(DISTRIBUTIONS)} + {args.model_mb} MB pickled model); built in "
            f"{time.perf_counter() - started:.1f} s"
        )
        load = os.getloadavg()[0]
        print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f} (figures scale with other work running)")
        for label, target in (("folder", root), ("zip", archive)):
            seconds, children_mb, hwm_mb, code, summary = run_scan(target)
            verdict = "OK" if seconds < 10 and hwm_mb < 300 else "over target"
            print(
                f"sas scan {label:6s}: {seconds:5.2f} s wall, peak RSS {hwm_mb:4.0f} MB (VmHWM; getrusage children "
                f"max so far {children_mb:.0f} MB), exit {code}  [{verdict}; target < 10 s and < 300 MB]"
            )
            print(f"    {summary.strip()}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
