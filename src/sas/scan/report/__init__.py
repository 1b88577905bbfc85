"""Report writers: one module per format. ``render(result, fmt)`` returns the whole report as text."""

from __future__ import annotations

import importlib

from sas.errors import InputError
from sas.scan.findings import ScanResult

FORMATS: dict[str, str] = {
    "table": "sas.scan.report.table",
    "json": "sas.scan.report.json_report",
    "sarif": "sas.scan.report.sarif",
    "markdown": "sas.scan.report.markdown",
    "cyclonedx": "sas.scan.report.cyclonedx",
}


def render(result: ScanResult, fmt: str) -> str:
    try:
        module = importlib.import_module(FORMATS[fmt])
    except KeyError:
        raise InputError(f"unknown format {fmt!r} (expected one of: {', '.join(FORMATS)})") from None
    except ModuleNotFoundError as exc:
        raise InputError(f"format {fmt!r} is not available: {exc}") from None
    text: str = module.render(result)
    return text
