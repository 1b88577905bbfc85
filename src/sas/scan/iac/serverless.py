"""Serverless Framework files (placeholder until the parser lands)."""

from __future__ import annotations

from typing import Any

from sas.scan.iac.model import Deployment


def looks_like(doc: Any) -> bool:
    return isinstance(doc, dict) and "service" in doc and "provider" in doc


def parse(doc: Any, path: str, files: dict[str, str]) -> Deployment:
    return Deployment("serverless", path)
