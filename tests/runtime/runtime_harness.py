"""Real runtimes for the runtime tests: a Lambda Runtime API emulator for awslambdaric, a functions-framework
server, a moto server for STS, a loopback listener as an egress target, and the function directories."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FUNCTIONS = HERE / "functions"
EXAMPLES = REPO / "examples" / "runtime"
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port} not listening after {timeout}s")


# --- TOML (enough for sas.toml: nested tables of strings, numbers, booleans and lists) ---------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(type(value))


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    out = ""
    if lines:
        out += (f"[{prefix}]\n" if prefix else "") + "\n".join(lines) + "\n\n"
    for k, v in data.items():
        if isinstance(v, dict):
            out += to_toml(v, f"{prefix}.{k}" if prefix else k)
    return out


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in override.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# --- model and function directories -----------------------------------------------------------------------
_MODEL_BYTES: list[bytes] = []


def build_model(path: Path) -> None:
    """A real scikit-learn model (trained once per test process, then copied)."""
    if _MODEL_BYTES:
        path.write_bytes(_MODEL_BYTES[0])
        return
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), path)
    _MODEL_BYTES.append(path.read_bytes())


def make_function_dir(root: Path, sources: list[Path], config: dict[str, Any]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for src in sources:
        shutil.copy(src, root / src.name)
    build_model(root / "model.joblib")
    (root / "sas.toml").write_text(to_toml(config))
    return root


def example_config(platform: str, overrides: dict[str, Any]) -> dict[str, Any]:
    import tomllib

    base = tomllib.loads((EXAMPLES / platform / "sas.toml").read_text())
    return merge(base, overrides)


def example_function(platform: str, source: str, root: Path, ledger: str = "ledger.jsonl") -> Path:
    """``examples/runtime/<platform>/<source>`` with its published sas.toml in ``root/fn``; only its /tmp and
    its ledger move under ``root``, where the test can look."""
    (root / "scratch").mkdir(parents=True, exist_ok=True)
    overrides = {"runtime": {"tmp_dir": str(root / "scratch")}, "forensics": {"ledger": f"jsonl:{root / ledger}"}}
    return make_function_dir(root / "fn", [EXAMPLES / platform / source], example_config(platform, overrides))


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    # the forensics ledger interleaves its own records (meta, checkpoints) with the events
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if "event" in r and "verdict" in r]


class Ledger:
    """Reads the events a function wrote to its jsonl ledger since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen = 0

    def new(self) -> list[dict[str, Any]]:
        events = read_events(self.path)
        fresh, self.seen = events[self.seen :], len(events)
        return fresh


def alerts(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["verdict"] != "allow" and e["event"] != "invocation"]


# --- egress target ------------------------------------------------------------------------------------------
class Listener:
    """A loopback TCP listener that counts connections: the 'outside host' of the egress tests."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


# --- moto (STS) on loopback -------------------------------------------------------------------------------------
class Moto:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [PYTHON, "-c", "from moto.server import main; main()", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, 60, self.proc)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


# --- Lambda Runtime API emulator --------------------------------------------------------------------------------
class LambdaEmulator:
    """The Runtime API awslambdaric talks to: /next hands out queued events, /response and /error answer."""

    PREFIX = "/2018-06-01/runtime"

    def __init__(self) -> None:
        self.pending: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.results: dict[str, queue.Queue[tuple[str, Any]]] = {}
        self.init_error: dict[str, Any] | None = None
        self.init_error_event = threading.Event()
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != f"{emulator.PREFIX}/invocation/next":
                    self.send_error(404)
                    return
                while True:
                    try:
                        request_id, body = emulator.pending.get(timeout=0.5)
                        break
                    except queue.Empty:
                        if emulator.closed:
                            return
                self.send_response(200)
                # awslambdaric's compiled client crashes when /next has no Content-Type
                self.send_header("Content-Type", "application/json")
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30_000))
                self.send_header(
                    "Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:shielded"
                )
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                parts = self.path[len(emulator.PREFIX) :].strip("/").split("/")
                if parts[:2] == ["init", "error"]:
                    emulator.init_error = json.loads(data or b"{}")
                    emulator.init_error_event.set()
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in {"response", "error"}:
                    emulator.results.setdefault(parts[1], queue.Queue()).put((parts[2], json.loads(data or b"null")))
                else:
                    self.send_error(404)
                    return
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.closed = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.proc: subprocess.Popen[bytes] | None = None

    def start_runtime(self, function_dir: Path, handler: str, env: dict[str, str] | None = None) -> None:
        full_env = {
            **os.environ,
            **AWS_ENV,
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.port}",
            "LAMBDA_TASK_ROOT": str(function_dir),
            "AWS_LAMBDA_FUNCTION_NAME": "shielded",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "_HANDLER": handler,
            **(env or {}),
        }
        self.log = function_dir / "runtime.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [PYTHON, "-m", "awslambdaric", handler], cwd=function_dir, env=full_env, stdout=log, stderr=log
            )

    def invoke(self, event: Any, timeout: float = 60.0) -> tuple[str, Any]:
        request_id = uuid.uuid4().hex
        self.results[request_id] = queue.Queue()
        self.pending.put((request_id, json.dumps(event).encode()))
        try:
            return self.results[request_id].get(timeout=timeout)
        except queue.Empty:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise TimeoutError(f"no answer from the runtime; its log:\n{log}") from None

    def close(self) -> None:
        self.closed = True
        if self.proc is not None:
            self.proc.kill()  # the runtime client sits in native code waiting on /next: SIGTERM waits
            self.proc.wait(10)
        self.server.shutdown()
        self.server.server_close()


def apigw_v2(body: Any, source_ip: str = "198.51.100.7", raw: str | None = None) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "POST /predict",
        "rawPath": "/predict",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {"method": "POST", "path": "/predict", "sourceIp": source_ip},
            "requestId": uuid.uuid4().hex,
            "domainName": "abc.execute-api.us-east-1.amazonaws.com",
        },
        "body": raw if raw is not None else json.dumps(body),
        "isBase64Encoded": False,
    }


# --- functions-framework -------------------------------------------------------------------------------------------
class FunctionsFramework:
    def __init__(
        self,
        function_dir: Path,
        source: str,
        target: str,
        signature: str = "http",
        env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> None:
        self.port = free_port()
        self.log = function_dir / f"ff-{target}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "functions_framework",
                    "--target",
                    target,
                    "--source",
                    str(function_dir / source),
                    "--signature-type",
                    signature,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                cwd=function_dir,
                env={**os.environ, **AWS_ENV, **(env or {})},
                stdout=log,
                stderr=log,
                start_new_session=True,  # gunicorn master and worker: stopped together
            )
        self.url = f"http://127.0.0.1:{self.port}/"
        if wait:
            self.wait()

    def wait(self) -> FunctionsFramework:
        try:
            wait_port(self.port, 90, self.proc)
        except (RuntimeError, TimeoutError):
            raise RuntimeError(self.log.read_text(errors="replace")[-3000:]) from None
        return self

    def post(self, body: bytes | Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as err:
            raw, status = err.read(), err.code
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def close(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


# --- the attack functions' configuration ----------------------------------------------------------------
def attack_config(mode: str, root: Path, moto: Moto, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    tmp_dir = root / "scratch"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "runtime": {
            "mode": mode,
            "tmp_dir": str(tmp_dir),
            "code_dir": str(root / "fn"),
            "egress": {"allow": [f"127.0.0.1:{moto.port}"]},
            "process": {"allow_subprocess": False},
            "sdk": {"expected": ["sts:GetCallerIdentity"]},
        },
        "forensics": {"ledger": f"jsonl:{root / 'ledger.jsonl'}"},
    }
    if extra:
        config = merge(config, extra)
    return config


ATTACK_SOURCES = {
    "aws": [FUNCTIONS / "actions.py", FUNCTIONS / "aws_function.py"],
    "gcp": [FUNCTIONS / "actions.py", FUNCTIONS / "gcp_function.py"],
    "azure": [FUNCTIONS / "actions.py", FUNCTIONS / "azure_function.py"],
}


# --- signed manifests for the cold-start tests ---------------------------------------------------------------
def cold_start_table(fn: Path, keys: Path, paths: list[str]) -> dict[str, Any]:
    """The [runtime.cold_start] table that checks ``paths`` of ``fn`` against the manifest signed into ``keys``."""
    return {
        "manifest": str(keys / "manifest.json"),
        "public_key": str(keys / "release.pub"),
        "root": str(fn),
        "paths": paths,
    }


def sign_function_dir(fn: Path, keys: Path) -> None:
    """Sign the finished function folder with a fresh key (the release step)."""
    from sas import integrity

    keys.mkdir(parents=True, exist_ok=True)
    private = integrity.generate_private_key()
    integrity.write_keypair(private, keys / "release")
    integrity.build_manifest(fn, private).write(keys / "manifest.json")


def signed_tampered_function(root: Path, sources: list[Path], config: dict[str, Any], paths: list[str]) -> Path:
    """A function folder whose model was replaced after the release was signed."""
    fn = root / "fn"
    config = merge(config, {"runtime": {"cold_start": cold_start_table(fn, root / "keys", paths)}})
    make_function_dir(fn, sources, config)
    sign_function_dir(fn, root / "keys")
    tamper_model(fn / "model.joblib")
    return fn


def tamper_model(path: Path) -> None:
    """Replace the model with a different one that still loads (a poisoned retrain, not a corrupt file)."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=500, C=0.01).fit(x, 2 - y), path)
