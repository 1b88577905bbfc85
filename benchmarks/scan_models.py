"""Speed and peak memory of the model scanner beside the stdlib ``pickletools.genops`` baseline.

Builds its own inputs in a temporary folder (nothing is downloaded):

* ``dense.pkl``: an opcode-dense pickle (~35 MB, ~14 M opcodes: a long list of short lists of small ints,
  a float and a short string);
* ``checkpoint.pt``: a ~300 MB ``torch.save`` zip checkpoint (one float32 tensor plus a few small ones);
* ``array.pkl``: a 200 MB float64 NumPy array, pickled (protocol 4, one BINBYTES8 payload).

Each measurement runs in a fresh interpreter so that peak memory (``ru_maxrss``, which includes the
interpreter itself) is never mixed between runs. "sas" is ``sas.scan.engine.scan(file)``, the whole scanner
with every analyzer registered, hashing included; "genops" walks the same pickles (for the checkpoint, every
``.pkl`` member of the zip) with ``pickletools.genops`` and does nothing else; "sha256" only reads and hashes
the file, the floor for any scanner that records the artifact's digest (sas does, for the inventory).

Run: ``.venv/bin/python benchmarks/scan_models.py`` (needs numpy and torch, ~1 GB of free disk, ~1 min).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = r"""
import json, sys, time
mode, path = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if mode == "sas":
    from sas.scan.engine import scan
    result = scan(path)
    worst = result.worst()
    detail = f"{len(result.findings)} findings, worst {worst.value if worst else 'none'}"
elif mode == "sha256":
    import hashlib
    with open(path, "rb") as fh:
        detail = "floor: reading and hashing the file, " + hashlib.file_digest(fh, "sha256").hexdigest()[:12]
else:
    import pickletools, zipfile
    count = 0
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                if name.endswith(".pkl"):
                    with zf.open(name) as fh:
                        for _ in pickletools.genops(fh):
                            count += 1
    else:
        with open(path, "rb") as fh:
            for _ in pickletools.genops(fh):
                count += 1
    detail = f"{count} opcodes"
seconds = time.perf_counter() - t0
# VmHWM (peak resident set of this process image); ru_maxrss would carry the parent's peak across fork+exec
peak_mb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "detail": detail}))
"""


def build_dense(path: Path) -> None:
    rows = [[i & 0xFF, (i >> 3) & 0xFF, 7, 8, 9, 10, 11, 12, i * 0.5, str(i % 100_000)] for i in range(950_000)]
    with path.open("wb") as fh:
        pickle.dump(rows, fh, protocol=4)


def build_checkpoint(path: Path) -> None:
    import torch

    state = {"weight": torch.zeros(75_000_000, dtype=torch.float32), "bias": torch.ones(16), "step": 3}
    torch.save(state, path)


def build_array(path: Path) -> None:
    import numpy as np

    with path.open("wb") as fh:
        pickle.dump(np.zeros(25_000_000, dtype=np.float64), fh, protocol=4)


def measure(mode: str, path: Path) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", WORKER, mode, str(path)], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="sas-bench-") as tmp:
        folder = Path(tmp)
        inputs = [
            ("dense pickle", folder / "dense.pkl", build_dense),
            ("torch checkpoint", folder / "checkpoint.pt", build_checkpoint),
            ("pickled float array", folder / "array.pkl", build_array),
        ]
        started = time.perf_counter()
        for _, path, build in inputs:  # each in its own process, so this one stays small
            code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import scan_models as m; "
            code += f"m.{build.__name__}(__import__('pathlib').Path({str(path)!r}))"
            subprocess.run([sys.executable, "-c", code], check=True)
        load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
        print(f"inputs built in {time.perf_counter() - started:.1f} s; load average {load} on {os.cpu_count()} CPUs")
        header = f"{'input':<22}{'size MB':>9}  {'tool':<8}{'time s':>8}{'peak MB':>9}  detail"
        print(header)
        print("-" * len(header))
        for label, path, _ in inputs:
            size_mb = path.stat().st_size / 1e6
            for mode in ("sas", "genops", "sha256"):
                r = measure(mode, path)
                print(f"{label:<22}{size_mb:>9.1f}  {mode:<8}{r['seconds']:>8.2f}{r['peak_mb']:>9.1f}  {r['detail']}")


if __name__ == "__main__":
    main()
