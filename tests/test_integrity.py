"""The signed integrity manifest: round trip, every kind of tampering, and unusable inputs."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest

from sas import integrity
from sas.integrity import KeyFileError, ManifestError, build_manifest, load_public_key, verify_tree


@pytest.fixture(scope="module")
def key() -> integrity.Ed25519PrivateKey:
    return integrity.generate_private_key()


def _package(root: Path) -> Path:
    pkg = root / "pkg"
    (pkg / "lib" / "demo-1.0.dist-info").mkdir(parents=True)
    (pkg / "lib" / "demo").mkdir()
    (pkg / "handler.py").write_text("def handler(event, context):\n    return 1\n")
    (pkg / "model.pkl").write_bytes(os.urandom(300_000))  # above the one-read threshold: chunked path
    (pkg / "lib" / "demo" / "__init__.py").write_text("VALUE = 1\n")
    (pkg / "lib" / "demo-1.0.dist-info" / "RECORD").write_text(
        "demo/__init__.py,sha256=x,10\ndemo-1.0.dist-info/RECORD,,\n"
    )
    return pkg


def _build(pkg: Path, key: integrity.Ed25519PrivateKey, out: Path) -> Path:
    build_manifest(pkg, key, scan_summary={"findings": 0}).write(out)
    return out


def test_round_trip_verifies(tmp_path: Path, key: integrity.Ed25519PrivateKey) -> None:
    pkg = _package(tmp_path)
    manifest = _build(pkg, key, tmp_path / "m.json")
    report = verify_tree(pkg, manifest, key.public_key())
    assert report.ok and not report.problems()
    assert report.files_checked == 4 and report.bytes_checked > 300_000


def test_manifest_records_kinds_scan_summary_and_is_canonical(tmp_path: Path, key: integrity.Ed25519PrivateKey) -> None:
    pkg = _package(tmp_path)
    manifest = build_manifest(pkg, key, scan_summary={"findings": 3})
    kinds = {e.path: e.kind for e in manifest.files}
    assert kinds["handler.py"] == "code"
    assert kinds["model.pkl"] == "model"
    assert kinds["lib/demo/__init__.py"] == "dependency"
    doc = json.loads(manifest.to_bytes())
    assert doc["scan"] == {"findings": 3} and doc["format"] == integrity.FORMAT
    assert doc["files"][0]["sha256"] and doc["tool"]["version"]
    assert manifest.to_bytes() == integrity.Manifest.from_bytes(manifest.to_bytes()).to_bytes()


def test_changed_file_is_named(tmp_path: Path, key: integrity.Ed25519PrivateKey) -> None:
    pkg = _package(tmp_path)
    manifest = _build(pkg, key, tmp_path / "m.json")
    (pkg / "handler.py").write_text("def handler(event, context):\n    return 2\n")  # same size, other bytes
    report = verify_tree(pkg, manifest, key.public_key())
    assert not report.ok and report.changed == ("handler.py",) and not report.bad_signature


def test_changed_size_is_named(tmp_path: Path, key: integrity.Ed25519PrivateKey) -> None:
    pkg = _package(tmp_path)
    manifest = _build(pkg, key, tmp_path / "m.json")
    with (pkg / "model.pkl").open("ab") as fh:
        fh.write(b"\x00")
    assert verify_tree(pkg, manifest, key.public_key()).changed == ("model.pkl",)


def test_added_file_is_named(tmp_path: Path, key: integrity.Ed25519PrivateKey) -> None:
    pkg = _package(tmp_path)
    manifest = _build(pkg, key, tmp_path / "m.json")
    (pkg / "lib" / "sitecustomize.py").write_text("import os\n")
    report = verify_tree(pkg, manifest, key.public_key())
    assert not report.ok and report.added == ("lib/sitecustomize.py",)


def test_removed_file_is_named(tmp_path: Path, key: integrity.Ed25519PrivateKey) -> None:
    pkg = _package(tmp_path)
    manifest = _build(pkg, key, tmp_path / "m.json")
    (pkg / "model.pkl").unlink()
    report = verify_tree(pkg, manifest, key.public_key())
    assert not report.ok and report.removed == ("model.pkl",)


def test_resigned_with_another_key_is_bad_signature(tmp_path: Path, key: integrity.Ed25519PrivateKey) -> None:
    pkg = _package(tmp_path)
    other = integrity.generate_private_key()
    manifest = _build(pkg, other, tmp_path / "m.json")
    report = verify_tree(pkg, manifest, key.public_key())
    assert not report.ok and report.bad_signature
    assert "bad signature" in report.problems()[0]


def test_edited_manifest_breaks_signature(tmp_path: Path, key: integrity.Ed25519PrivateKey) -> None:
    pkg = _package(tmp_path)
    manifest = _build(pkg, key, tmp_path / "m.json")
    (pkg / "handler.py").write_text("import os; os.system('id')\n")
    # the attacker updates the manifest entry to match the new file but cannot re-sign it
    fresh = build_manifest(pkg, integrity.generate_private_key())
    doc = json.loads(manifest.read_bytes())
    new_entry = next(e for e in fresh.payload()["files"] if e["path"] == "handler.py")
    doc["files"] = [new_entry if e["path"] == "handler.py" else e for e in doc["files"]]
    manifest.write_bytes(integrity.canonical_json(doc))
    report = verify_tree(pkg, manifest, key.public_key())
    assert report.bad_signature and not report.changed


def test_symlink_retargeted_is_changed(tmp_path: Path, key: integrity.Ed25519PrivateKey) -> None:
    pkg = _package(tmp_path)
    (pkg / "current").symlink_to("handler.py")
    manifest = _build(pkg, key, tmp_path / "m.json")
    (pkg / "current").unlink()
    (pkg / "current").symlink_to("/etc/passwd")
    assert verify_tree(pkg, manifest, key.public_key()).changed == ("current",)


def test_manifest_inside_tree_is_not_part_of_it(tmp_path: Path, key: integrity.Ed25519PrivateKey) -> None:
    pkg = _package(tmp_path)
    out = pkg / "sas-manifest.json"
    build_manifest(pkg, key, exclude=["sas-manifest.json"]).write(out)
    assert verify_tree(pkg, out, key.public_key()).ok
    # given as bytes, the exclusion recorded in the signed manifest still applies
    assert verify_tree(pkg, out.read_bytes(), key.public_key()).ok


def test_paths_limit_the_check(tmp_path: Path, key: integrity.Ed25519PrivateKey) -> None:
    pkg = _package(tmp_path)
    manifest = _build(pkg, key, tmp_path / "m.json")
    (pkg / "lib" / "demo" / "__init__.py").write_text("VALUE = 2\n")
    assert verify_tree(pkg, manifest, key.public_key(), paths=["handler.py", "model.pkl"]).ok
    report = verify_tree(pkg, manifest, key.public_key(), paths=["lib"])
    assert report.changed == ("lib/demo/__init__.py",) and report.files_checked == 2
    assert verify_tree(pkg, manifest, key.public_key(), paths=["./lib/demo/"]).changed == ("lib/demo/__init__.py",)
    assert not verify_tree(pkg, manifest, key.public_key(), paths=["."]).ok


def test_zip_round_trip_and_change(tmp_path: Path, key: integrity.Ed25519PrivateKey) -> None:
    pkg = _package(tmp_path)
    archive = tmp_path / "function.zip"

    def pack(handler_text: str) -> None:
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(pkg.rglob("*")):
                if path.is_file():
                    data = handler_text.encode() if path.name == "handler.py" else path.read_bytes()
                    zf.writestr(path.relative_to(pkg).as_posix(), data)

    pack("def handler(event, context):\n    return 1\n")
    manifest = _build(archive, key, tmp_path / "m.json")
    assert verify_tree(archive, manifest, key.public_key()).ok
    pack("def handler(event, context):\n    return 9\n")
    assert verify_tree(archive, manifest, key.public_key()).changed == ("handler.py",)
    # the folder the zip was built from verifies against the zip's manifest too
    (pkg / "handler.py").write_text("def handler(event, context):\n    return 1\n")
    assert verify_tree(pkg, manifest, key.public_key()).ok


def test_corrupt_zip_member_is_unreadable_not_a_crash(tmp_path: Path, key: integrity.Ed25519PrivateKey) -> None:
    from sas.errors import InputError

    archive = tmp_path / "function.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("handler.py", "def handler(event, context):\n    return 1\n" * 50)
        zf.writestr("model.bin", os.urandom(5000))
    manifest = _build(archive, key, tmp_path / "m.json")
    data = bytearray(archive.read_bytes())
    start = data.index(b"handler.py") + len("handler.py") + 5  # inside the deflated data of the first member
    data[start : start + 20] = bytes(20)
    archive.write_bytes(bytes(data))
    report = verify_tree(archive, manifest, key.public_key())
    assert not report.ok and report.unreadable == ("handler.py",)
    with pytest.raises(InputError, match="cannot read 1 file"):
        build_manifest(archive, key)


@pytest.mark.parametrize("algorithm", ["blake2b", "blake3"])
def test_other_algorithms_round_trip(tmp_path: Path, key: integrity.Ed25519PrivateKey, algorithm: str) -> None:
    if algorithm == "blake3":
        pytest.importorskip("blake3")
    pkg = _package(tmp_path)
    out = tmp_path / "m.json"
    build_manifest(pkg, key, algorithm=algorithm).write(out)
    assert json.loads(out.read_bytes())["algorithm"] == algorithm
    assert verify_tree(pkg, out, key.public_key()).ok
    (pkg / "handler.py").write_text("def handler(event, context):\n    return 3\n")
    assert verify_tree(pkg, out, key.public_key()).changed == ("handler.py",)


def test_truncated_manifest_is_clear_error(tmp_path: Path, key: integrity.Ed25519PrivateKey) -> None:
    pkg = _package(tmp_path)
    manifest = _build(pkg, key, tmp_path / "m.json")
    manifest.write_bytes(manifest.read_bytes()[:200])
    with pytest.raises(ManifestError, match="not valid JSON"):
        verify_tree(pkg, manifest, key.public_key())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"format": "something-else"}', "not a sas-integrity-manifest/1"),
        (b'{"format": "sas-integrity-manifest/1"}', "malformed manifest"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_manifest_is_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        integrity.Manifest.from_bytes(content)


def test_malformed_entry_is_clear_error(key: integrity.Ed25519PrivateKey, tmp_path: Path) -> None:
    doc = json.loads(build_manifest(_package(tmp_path), key).to_bytes())
    doc["files"][0]["size"] = -1
    with pytest.raises(ManifestError, match="non-negative"):
        integrity.Manifest.from_bytes(json.dumps(doc).encode())
    doc["files"][0]["size"] = 1
    doc["files"].append(doc["files"][0])
    with pytest.raises(ManifestError, match="listed twice"):
        integrity.Manifest.from_bytes(json.dumps(doc).encode())


def test_keypair_files(tmp_path: Path, key: integrity.Ed25519PrivateKey) -> None:
    key_path, pub_path = integrity.write_keypair(key, tmp_path / "signer")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    loaded = integrity.load_private_key(key_path)
    assert integrity.public_key_hex(loaded.public_key()) == integrity.public_key_hex(load_public_key(pub_path))
    raw_hex = integrity.public_key_hex(key.public_key()).encode()
    assert integrity.public_key_hex(load_public_key(raw_hex)) == raw_hex.decode()
    with pytest.raises(KeyFileError, match="already exists"):
        integrity.write_keypair(key, tmp_path / "signer")


def test_bad_key_files_are_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pub"
    junk.write_text("hello")
    with pytest.raises(KeyFileError, match="not an Ed25519 public key"):
        load_public_key(junk)
    with pytest.raises(KeyFileError, match="cannot read key"):
        load_public_key(tmp_path / "missing.pub")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_pub = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = ec_pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(KeyFileError, match="not an Ed25519"):
        load_public_key(pem)


def test_missing_root_is_input_error(tmp_path: Path, key: integrity.Ed25519PrivateKey) -> None:
    from sas.errors import InputError

    with pytest.raises(InputError, match="no such file"):
        build_manifest(tmp_path / "absent", key)


def test_file_that_grew_after_build_is_changed(tmp_path: Path, key: integrity.Ed25519PrivateKey) -> None:
    pkg = _package(tmp_path)
    manifest = _build(pkg, key, tmp_path / "m.json")
    (pkg / "handler.py").write_bytes(b"x" * 600_000)  # small when signed, large now: both read paths
    (pkg / "model.pkl").write_bytes(b"y" * 10)
    assert verify_tree(pkg, manifest, key.public_key()).changed == ("handler.py", "model.pkl")


def test_fifo_is_skipped_not_hung(tmp_path: Path, key: integrity.Ed25519PrivateKey) -> None:
    pkg = _package(tmp_path)
    os.mkfifo(pkg / "pipe")
    manifest = build_manifest(pkg, key)
    assert "pipe" not in {e.path for e in manifest.files}


def test_integrity_imports_nothing_from_scan_runtime_or_cli() -> None:
    import subprocess
    import sys

    code = (
        "import sys, sas.integrity as i; i.load_public_key(bytes(32).hex().encode()); "
        "bad = [m for m in sys.modules if m.startswith(('sas.scan', 'sas.runtime', 'sas.cli'))]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["totals"].update(files=1),
        lambda d: d["tool"].update(name="another-tool"),
        lambda d: d["signer"].update(algorithm="none"),
        lambda d: d.update(note="approved by security"),
    ],
    ids=["totals", "tool", "signer-algorithm", "added-field"],
)
def test_edits_to_fields_the_parser_does_not_read_break_the_signature(
    tmp_path: Path, key: integrity.Ed25519PrivateKey, edit: Any
) -> None:
    """Found by fuzzing: the signature was checked over the document rebuilt from the fields read, so an edit to
    any other field (what a person reads: totals, tool, signer) verified as signed."""
    pkg = _package(tmp_path)
    manifest = _build(pkg, key, tmp_path / "m.json")
    doc = json.loads(manifest.read_bytes())
    edit(doc)
    manifest.write_bytes(integrity.canonical_json(doc))
    report = verify_tree(pkg, manifest, key.public_key())
    assert report.bad_signature and not report.ok
