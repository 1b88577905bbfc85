"""Terraform (placeholder until the parser lands)."""

from __future__ import annotations

from sas.scan.iac.model import Deployment


def parse(folder: str, files: list[tuple[str, str]]) -> Deployment:
    return Deployment("terraform", folder)
