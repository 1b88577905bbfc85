"""Time and peak memory of the non-pickle model analyzers on large inputs built here, beside the format's
own library loading the same file. Run: .venv/bin/python benchmarks/scan_model_formats.py [MiB]

Each measurement runs in a fresh process; memory is the peak resident set (VmHWM) minus the peak after
imports, so it shows what reading the model costs, not the interpreter. sas's time includes the SHA-256 of
the whole file for the inventory, which the libraries do not compute. Linux only (/proc).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

MEASURE = r"""
import json, sys, time
def hwm_kib():  # VmHWM belongs to this process's memory map; ru_maxrss would carry the parent's over fork
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
what, path = sys.argv[1], sys.argv[2]
if what == "sas":
    from sas.scan import registry
    from sas.scan.engine import scan
    active = registry.analyzers()
elif what == "onnx.load":
    import onnx
elif what == "gguf.GGUFReader":
    import gguf
elif what == "safetensors.load_file":
    from safetensors.numpy import load_file
base = hwm_kib()
t = time.perf_counter()
if what == "sas":
    result = scan(path, analyzers=active)
    extra = {"findings": len(result.findings), "worst": str(result.worst())}
elif what == "onnx.load":
    onnx.load(path); extra = {}
elif what == "gguf.GGUFReader":
    reader = gguf.GGUFReader(path); extra = {"tensors": len(reader.tensors)}
elif what == "safetensors.load_file":
    load_file(path); extra = {}
seconds = time.perf_counter() - t
peak = hwm_kib()
print(json.dumps({"seconds": seconds, "mib": (peak - base) / 1024, **extra}))
"""


def measure(what: str, path: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", MEASURE, what, str(path)], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def build(folder: Path, mib: int) -> dict[str, tuple[Path, str]]:
    import gguf
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import save_file

    n = mib * 1024 * 1024 // 4
    weights = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
    paths: dict[str, tuple[Path, str]] = {}

    st = folder / "big.safetensors"
    save_file({f"w{i}": part for i, part in enumerate(np.array_split(weights, 64))}, str(st))
    paths["safetensors"] = (st, "safetensors.load_file")

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, n // 1024])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 1024])
    w = numpy_helper.from_array(weights.reshape(n // 1024, 1024), "W")
    graph = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"])], "g", [x], [y], [w])
    on = folder / "big.onnx"
    onnx.save(helper.make_model(graph), str(on))
    del w, graph
    paths["onnx"] = (on, "onnx.load")

    gg = folder / "big.gguf"
    writer = gguf.GGUFWriter(str(gg), "llama")
    writer.add_chat_template("{% for m in messages %}{{ m['role'] + ': ' + m['content'] }}{% endfor %}")
    writer.add_token_list([f"tok{i}" for i in range(128_000)])
    for i, part in enumerate(np.array_split(weights, 64)):
        writer.add_tensor(f"blk.{i}.weight", part)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    paths["gguf"] = (gg, "gguf.GGUFReader")
    return paths


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    with tempfile.TemporaryDirectory() as tmp:
        paths = build(Path(tmp), mib)
        print(f"{'format':<12} {'size MiB':>9} {'tool':<22} {'seconds':>8} {'peak MiB':>9}  result")
        for fmt, (path, baseline) in paths.items():
            size = path.stat().st_size / 2**20
            for tool in ("sas", baseline):
                r = measure(tool, path)
                extra = {k: v for k, v in r.items() if k not in ("seconds", "mib")}
                print(f"{fmt:<12} {size:>9.0f} {tool:<22} {r['seconds']:>8.2f} {r['mib']:>9.0f}  {extra or ''}")


if __name__ == "__main__":
    main()
