"""Azure Functions (placeholder until the parser lands)."""

from __future__ import annotations

from typing import Any

from sas.scan.iac.model import Deployment


def looks_like_function_json(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("bindings"), list)


def looks_like_python_v2(text: str) -> bool:
    return False


def parse_json_file(text: str, path: str, name: str) -> Deployment:
    return Deployment("azure", path)


def parse_python_v2(text: str, path: str) -> Deployment:
    return Deployment("azure", path)
