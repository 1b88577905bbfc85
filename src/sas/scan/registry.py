"""The analyzers ``sas scan`` runs, in order. Add a new analyzer module here."""

from __future__ import annotations

import importlib

from sas.scan.analyzer import Analyzer

# module path -> factory name; modules are imported on demand so that ``sas rules`` and scans stay cheap.
ANALYZER_MODULES: tuple[str, ...] = (
    "sas.scan.models.pickle_scan",
    "sas.scan.models.torch_scan",
    "sas.scan.models.numpy_scan",
    "sas.scan.models.keras_scan",
    "sas.scan.models.onnx_scan",
    "sas.scan.models.safetensors_scan",
    "sas.scan.models.gguf_scan",
    "sas.scan.models.tf_scan",
    "sas.scan.supply.analyzer",
    # before the code rules: its cross-file work (Serverless, Terraform) names the handlers the code rules must
    # check at their own end (ScanContext.handler_modules)
    "sas.scan.iac.analyzer",
    "sas.scan.code",
)

# Modules that declare rules without being file analyzers (the archive walker, say).
RULE_MODULES: tuple[str, ...] = ("sas.scan.archives",)


def _import(name: str) -> object | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):  # not written yet
            return None
        raise


def load_all() -> None:
    for name in RULE_MODULES + ANALYZER_MODULES:
        _import(name)


def analyzers() -> list[Analyzer]:
    """Fresh analyzer instances (they may hold per-scan state) from every module's ``ANALYZERS`` list."""
    out: list[Analyzer] = []
    for name in ANALYZER_MODULES:
        module = _import(name)
        if module is None:
            continue
        for factory in getattr(module, "ANALYZERS", ()):
            out.append(factory())
    return out
