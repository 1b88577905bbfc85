"""Layers: Lambda's import order (function root, then /opt/python/lib/python3.x/site-packages, then
/opt/python; later layers overwrite earlier ones in /opt), as zips, folders, and folders next to a SAM template."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from supply_helpers import at_least, run

from sas.cli import main
from sas.taxonomy import Severity


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for rel, text in files.items():
            zf.writestr(rel, text)
    return path


def _rules(result: object, rule_id: str) -> list[tuple[str, Severity]]:
    return [(f.location.path, f.severity) for f in result.findings if f.rule_id == rule_id]  # type: ignore[attr-defined]


def test_zip_layer_package_beats_function_namespace_folder(tmp_path: Path) -> None:
    function = _write(tmp_path / "fn", {"handler.py": "from app import model\n", "app/model.py": "X = 1\n"})
    layer = _zip(tmp_path / "L1.zip", {"python/app/__init__.py": "", "python/app/model.py": "X = 2\n"})
    result = run(function, layers=(str(layer),))
    assert _rules(result, "SAS-LAYER-001") == [("layer:L1.zip!python/app/__init__.py", Severity.HIGH)]


def test_function_regular_package_wins_and_layer_copy_is_low(tmp_path: Path) -> None:
    function = _write(tmp_path / "fn", {"app/__init__.py": "", "app/model.py": "X = 1\n"})
    layer = _write(tmp_path / "L1", {"python/app/__init__.py": "", "python/app/model.py": "X = 2\n"})
    result = run(function, layers=(str(layer),))
    assert _rules(result, "SAS-LAYER-001") == []
    assert _rules(result, "SAS-LAYER-003") == [("layer:L1!python/app/__init__.py", Severity.LOW)]


def test_identical_copies_are_not_reported(tmp_path: Path) -> None:
    files = {"python/util_pkg/__init__.py": "A = 1\n"}
    one = _write(tmp_path / "L1", files)
    two = _write(tmp_path / "L2", files)
    function = _write(tmp_path / "fn", {"handler.py": "import util_pkg\n"})
    assert [f for f in run(function, layers=(str(one), str(two))).findings if f.rule_id.startswith("SAS-LAYER")] == []


def test_site_packages_layer_shadows_other_layers_python_folder(tmp_path: Path) -> None:
    first = _write(tmp_path / "L1", {"python/fastjson.py": "def dumps(x): return ''\n"})
    second = _write(tmp_path / "L2", {"python/lib/python3.12/site-packages/fastjson.py": "import os\n"})
    function = _write(tmp_path / "fn", {"handler.py": "import fastjson\n"})
    result = run(function, layers=(str(first), str(second)))
    assert _rules(result, "SAS-LAYER-001") == [
        ("layer:L2!python/lib/python3.12/site-packages/fastjson.py", Severity.HIGH)
    ]


def test_later_layer_overwriting_a_file_is_high(tmp_path: Path) -> None:
    first = _write(tmp_path / "L1", {"python/shared/__init__.py": "", "python/shared/auth.py": "OK = True\n"})
    second = _write(tmp_path / "L2", {"python/shared/auth.py": "OK = False\n"})
    function = _write(tmp_path / "fn", {"handler.py": "import shared\n"})
    result = run(function, layers=(str(first), str(second)))
    assert ("layer:L2!python/shared/auth.py", Severity.HIGH) in _rules(result, "SAS-LAYER-002")


def test_layer_module_named_like_stdlib_is_high(tmp_path: Path) -> None:
    layer = _write(tmp_path / "L1", {"python/json.py": "def loads(s): return {}\n"})
    function = _write(tmp_path / "fn", {"handler.py": "import json\n"})
    assert _rules(run(function, layers=(str(layer),)), "SAS-VEND-005") == [("layer:L1!python/json.py", Severity.HIGH)]


def test_layer_files_get_the_vendored_checks_too(tmp_path: Path) -> None:
    layer = _write(
        tmp_path / "L1",
        {"python/sitecustomize.py": "import os\n", "python/lib/python3.12/site-packages/boot.pth": "import boot\n"},
    )
    function = _write(tmp_path / "fn", {"handler.py": "X = 1\n"})
    found = {(f.rule_id, f.location.path) for f in at_least(run(function, layers=(str(layer),)), Severity.HIGH)}
    assert ("SAS-VEND-007", "layer:L1!python/sitecustomize.py") in found
    assert ("SAS-VEND-006", "layer:L1!python/lib/python3.12/site-packages/boot.pth") in found


def test_layer_folders_next_to_a_sam_template(tmp_path: Path) -> None:
    template = """
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  Deps:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layers/deps/
      CompatibleRuntimes: [python3.12]
  Predict:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: handler.handler
      Runtime: python3.12
      Layers:
        - !Ref Deps
"""
    project = _write(
        tmp_path / "project",
        {
            "template.yaml": template,
            "src/handler.py": "from app import model\n",
            "src/app/model.py": "X = 1\n",
            "layers/deps/python/app/__init__.py": "",
            "layers/deps/python/app/model.py": "X = 2\n",
        },
    )
    result = run(project)
    assert _rules(result, "SAS-LAYER-001") == [("layers/deps/python/app/__init__.py", Severity.HIGH)]


def test_cli_scans_layers_and_prefixes_their_paths(tmp_path: Path, capsys: object) -> None:
    function = _write(tmp_path / "fn", {"handler.py": "X = 1\n"})
    layer = _zip(tmp_path / "L1.zip", {"python/sitecustomize.py": "import os\n"})
    code = main(["scan", str(function), "--layer", str(layer), "--format", "json", "--no-progress"])
    report = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    assert code == 1
    paths = {f["location"]["path"] for f in report["findings"] if f["rule_id"] == "SAS-VEND-007"}
    assert paths == {"layer:L1.zip!python/sitecustomize.py"}


def test_missing_layer_is_a_usage_error(tmp_path: Path, capsys: object) -> None:
    function = _write(tmp_path / "fn", {"handler.py": "X = 1\n"})
    assert main(["scan", str(function), "--layer", str(tmp_path / "nope.zip"), "--no-progress"]) == 2
    assert "nope.zip" in capsys.readouterr().err  # type: ignore[attr-defined]
