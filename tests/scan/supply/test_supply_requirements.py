"""Declared dependencies: pip requirements syntax, pyproject (PEP 621 and Poetry), poetry.lock, uv.lock,
Pipfile.lock; pinning, hashes, typosquats, dependency confusion and untrusted sources, with file and line."""

from __future__ import annotations

import json
from pathlib import Path

from supply_helpers import run

from sas.scan.findings import ScanResult
from sas.scan.supply.requirements import parse
from sas.taxonomy import Severity

INTERNAL = {"scan": {"supply": {"internal_packages": ["acme-*", "ledgerkit"]}}}
H1 = "--hash=sha256:" + "a" * 64
H2 = "--hash=sha256:" + "b" * 64


def _found(result: ScanResult, rule_id: str) -> list[tuple[str, int | None, Severity]]:
    return sorted((f.location.path, f.location.line, f.severity) for f in result.findings if f.rule_id == rule_id)


def test_parser_reads_every_pip_syntax() -> None:
    text = "\n".join(
        [
            "# pinned with hashes over continuation lines",
            "-i https://pypi.acme.internal/simple",
            "--extra-index-url https://pypi.org/simple",
            "--trusted-host pypi.acme.internal",
            "-r base.txt",
            "-c constraints.txt",
            f"requests==2.31.0 \\\n    {H1} \\\n    {H2}",
            "numpy>=1.26  # a comment",
            'pandas[performance]==2.2.0 ; python_version >= "3.9" and platform_machine != "x86-64"',
            "-e git+https://github.com/acme/tool.git@main#egg=acme-tool",
            "mylib @ https://example.com/mylib-1.0-py3-none-any.whl",
            "this is not a requirement !!",
        ]
    )
    parsed = parse(text, "requirements.txt")
    by_name = {r.name: r for r in parsed.requirements}
    assert by_name["requests"].version == "2.31.0" and len(by_name["requests"].hashes) == 2
    assert by_name["requests"].line == 7
    assert by_name["numpy"].version is None and by_name["numpy"].specifier == ">=1.26"
    assert by_name["pandas"].version == "2.2.0" and "platform_machine" in by_name["pandas"].markers
    assert by_name["acme-tool"].url.startswith("git+https://")
    assert by_name["mylib"].url == "https://example.com/mylib-1.0-py3-none-any.whl"
    assert parsed.index_url == ("https://pypi.acme.internal/simple", 2)
    assert parsed.extra_index_urls == [("https://pypi.org/simple", 3)]
    assert parsed.trusted_hosts == [("pypi.acme.internal", 4)]
    assert parsed.includes == [("base.txt", 5), ("constraints.txt", 6)]
    assert [line for line, _ in parsed.problems] == [14]


def test_unpinned_unhashed_and_typosquat_with_lines(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("flask>=3.0\nreqeusts==2.31.0\nnumpy==1.26.4\n")
    result = run(tmp_path)
    assert _found(result, "SAS-DEP-001") == [("requirements.txt", 1, Severity.MEDIUM)]
    assert _found(result, "SAS-DEP-003") == [("requirements.txt", 2, Severity.HIGH)]
    assert _found(result, "SAS-DEP-002") == [("requirements.txt", 1, Severity.LOW)]  # one per unhashed file


def test_partly_hashed_file_flags_each_unhashed_line_medium(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(f"requests==2.31.0 {H1}\nidna==3.7\nsix==1.16.0 {H2}\n")
    assert _found(run(tmp_path), "SAS-DEP-002") == [("requirements.txt", 2, Severity.MEDIUM)]


def test_includes_are_resolved_inside_the_package(tmp_path: Path) -> None:
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "prod.txt").write_text("-r base.txt\n-r missing.txt\nboto3==1.35.0\n")
    (tmp_path / "requirements" / "base.txt").write_text("numpy==1.26.4\ncolourama==0.4.6\n")
    result = run(tmp_path)
    assert _found(result, "SAS-DEP-003") == [("requirements/base.txt", 2, Severity.HIGH)]
    assert _found(result, "SAS-DEP-008") == [("requirements/prod.txt", 2, Severity.LOW)]


def test_insecure_sources(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "--extra-index-url http://mirror.example/simple\n--trusted-host mirror.example\n"
        "tool @ git+https://github.com/x/tool.git@main\n"
        "pinned @ git+https://github.com/x/pinned.git@" + "0" * 40 + "\n"
    )
    result = run(tmp_path)
    assert _found(result, "SAS-DEP-007") == [
        ("requirements.txt", 1, Severity.HIGH),
        ("requirements.txt", 2, Severity.MEDIUM),
        ("requirements.txt", 3, Severity.MEDIUM),
    ]


def test_dependency_confusion_through_extra_index(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "--index-url https://pypi.acme.internal/simple\n--extra-index-url https://pypi.org/simple\n"
        "acme-features==1.4.0\nrequests==2.31.0\n"
    )
    result = run(tmp_path, raw=INTERNAL)
    assert _found(result, "SAS-DEP-004") == [("requirements.txt", 3, Severity.HIGH)]


def test_dependency_confusion_through_default_index(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("ledgerkit==0.9\n")
    assert _found(run(tmp_path, raw=INTERNAL), "SAS-DEP-004") == [("requirements.txt", 1, Severity.HIGH)]


def test_private_index_only_is_not_confusion(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("--index-url https://pypi.acme.internal/simple\nacme-features==1.4.0\n")
    assert _found(run(tmp_path, raw=INTERNAL), "SAS-DEP-004") == []


def test_pyproject_pep621_and_poetry(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "fn"\ndependencies = [\n  "numpy==1.26.4",\n  "pandsa>=2",\n]\n\n'
        '[tool.poetry.dependencies]\npython = "^3.12"\nacme-core = "^1.0"\nacme-auth = { version = "1.2.0", '
        'source = "internal" }\n\n[[tool.poetry.source]]\nname = "internal"\nurl = "https://pypi.acme.internal/simple"\n'
        'priority = "supplemental"\n'
    )
    result = run(tmp_path, raw=INTERNAL)
    assert _found(result, "SAS-DEP-003") == [("pyproject.toml", 5, Severity.HIGH)]
    assert ("pyproject.toml", 10, Severity.HIGH) in _found(result, "SAS-DEP-004")
    assert all(line != 11 for _, line, _ in _found(result, "SAS-DEP-004"))  # acme-auth names its source
    assert {sev for _, _, sev in _found(result, "SAS-DEP-001")} == {Severity.LOW}


def test_lock_files(tmp_path: Path) -> None:
    (tmp_path / "poetry.lock").write_text(
        '[[package]]\nname = "acme-core"\nversion = "1.0.0"\nfiles = []\n\n'
        '[[package]]\nname = "numpy"\nversion = "1.26.4"\nfiles = []\n'
    )
    (tmp_path / "uv.lock").write_text(
        'version = 1\n\n[[package]]\nname = "fn"\nversion = "0.1.0"\nsource = { editable = "." }\n\n'
        '[[package]]\nname = "tenserflow"\nversion = "2.16.0"\nsource = { registry = "https://pypi.org/simple" }\n'
    )
    (tmp_path / "Pipfile.lock").write_text(
        json.dumps(
            {
                "_meta": {"sources": [{"name": "pypi", "url": "https://pypi.org/simple", "verify_ssl": True}]},
                "default": {"djanga": {"version": "==4.2.0", "hashes": ["sha256:" + "c" * 64], "index": "pypi"}},
                "develop": {},
            },
            indent=4,
        )
    )
    result = run(tmp_path, raw=INTERNAL)
    assert _found(result, "SAS-DEP-004") == [("poetry.lock", 2, Severity.HIGH)]
    squats = {(path, line) for path, line, _ in _found(result, "SAS-DEP-003")}
    assert squats == {("uv.lock", 9), ("Pipfile.lock", 12)}


def test_malformed_declarations_are_findings_not_tracebacks(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\nname = ")
    (tmp_path / "Pipfile.lock").write_bytes(b"\xff\xfe{not json")
    (tmp_path / "requirements.txt").write_bytes(b"\x00\x01\x02 ===\n" + b"\\" * 5000)
    result = run(tmp_path)
    assert {path for path, _, _ in _found(result, "SAS-DEP-008")} >= {"pyproject.toml", "Pipfile.lock"}
    assert not result.errors


def test_requirements_inside_vendored_distributions_are_not_ours(tmp_path: Path) -> None:
    info = tmp_path / "acmewidget-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Name: acmewidget\nVersion: 1.0\n\n")
    (tmp_path / "acmewidget").mkdir()
    (tmp_path / "acmewidget" / "__init__.py").write_text("")
    (tmp_path / "acmewidget" / "requirements.txt").write_text("reqeusts\n")
    (info / "RECORD").write_text("acmewidget/__init__.py,,\nacmewidget/requirements.txt,,\n")
    assert _found(run(tmp_path), "SAS-DEP-003") == []


def test_hostile_nesting_in_lock_files_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "Pipfile.lock").write_text("[" * 100_000)
    (tmp_path / "poetry.lock").write_text("a = " + "[" * 100_000)
    result = run(tmp_path)
    assert {path for path, _, _ in _found(result, "SAS-DEP-008")} == {"Pipfile.lock", "poetry.lock"}
    assert not result.errors


def test_primary_private_poetry_source_is_not_confusion(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.poetry.dependencies]\npython = "^3.12"\nacme-core = "1.0.0"\n\n'
        '[[tool.poetry.source]]\nname = "internal"\nurl = "https://pypi.acme.internal/simple"\npriority = "primary"\n'
    )
    assert _found(run(tmp_path, raw=INTERNAL), "SAS-DEP-004") == []


def test_bad_internal_packages_setting_is_a_config_error(tmp_path: Path, capsys: object) -> None:
    from sas.cli import main

    (tmp_path / "requirements.txt").write_text("requests==2.31.0\n")
    (tmp_path / "sas.toml").write_text('[scan.supply]\ninternal_packages = "acme-core"\n')
    assert main(["scan", str(tmp_path), "--no-progress"]) == 2
    assert "internal_packages" in capsys.readouterr().err  # type: ignore[attr-defined]
