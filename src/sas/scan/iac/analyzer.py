"""The deployment-configuration analyzer: finds templates by content and runs the parsers and checks.

Files are recognised by what they hold, not only their names: a YAML/JSON document with
``AWSTemplateFormatVersion``, a SAM ``Transform`` or ``AWS::`` resource types is a CloudFormation/SAM
template; one with ``service:`` and ``provider:`` is a Serverless Framework file; ``*.tf`` is Terraform;
a JSON object with ``bindings`` is an Azure ``function.json``; Python that imports ``azure.functions`` and
builds a ``FunctionApp`` is the Azure v2 programming model.

Serverless Framework files and Terraform are parsed in :meth:`IacAnalyzer.finish`, once the whole tree
was seen: ``${file(...)}`` variables read sibling files, and Terraform resources reference each other
across the ``.tf`` files of a folder.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from sas.scan.analyzer import Analyzer
from sas.scan.artifact import VirtualFile
from sas.scan.context import ScanContext
from sas.scan.findings import Location, make_finding
from sas.scan.iac import rules as iac_rules  # declares every SAS-IAC/SAS-IAM rule; the checks load lazily

if TYPE_CHECKING:
    from sas.scan.iac.checks import Checker
    from sas.scan.iac.model import Deployment

MAX_TEMPLATE_BYTES = 16 * 1024 * 1024  # far above CloudFormation's 1 MB limit; larger is not a template
MAX_SIDE_FILE_BYTES = 1024 * 1024  # files kept for ${file()} lookups
# HCL parsing (hcl2 on lark) grows faster than the text: 1.4 MB of resources took 23 s on a 2-core VM. A module
# for a few functions is kilobytes; beyond this a module is reported unchecked rather than stall the scan.
MAX_TERRAFORM_BYTES = 2 * 1024 * 1024
_TEXT_SUFFIXES = (".yaml", ".yml", ".json", ".template", ".tf", ".hcl", ".tf.json")
_AZURE_NAMES = ("function.json", "host.json", "local.settings.json")


class IacAnalyzer(Analyzer):
    name = "iac"

    def __init__(self) -> None:
        self._deferred_serverless: list[tuple[str, str, Any]] = []
        self._side_files: dict[str, str] = {}
        self._terraform: dict[str, list[tuple[str, str]]] = {}
        self._checker: Checker | None = None

    def claims(self, file: VirtualFile) -> bool:
        name = file.name.lower()
        if name.endswith(_TEXT_SUFFIXES):
            return True
        if name.endswith(".py"):
            return b"azure.functions" in file.head or b"azure import functions" in file.head
        return False

    def checker(self, ctx: ScanContext) -> Checker:
        if self._checker is None:
            from sas.scan.iac import checks

            raw = ctx.settings.raw
            section = raw.get("scan", {}).get("iac", {}) if isinstance(raw.get("scan"), dict) else {}
            trusted = section.get("trusted_accounts", ()) if isinstance(section, dict) else ()
            self._checker = checks.Checker([str(a) for a in trusted] if isinstance(trusted, list) else ())
        return self._checker

    def analyze(self, file: VirtualFile, ctx: ScanContext) -> bool:
        name = file.name.lower()
        if file.size > MAX_TEMPLATE_BYTES:
            if _maybe_deployment_name(name):
                self._report(ctx, _fatal(file.path, f"{file.size} bytes is too large for a deployment template"))
            return False
        with file.open() as stream:
            data = stream.read(MAX_TEMPLATE_BYTES + 1)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            if _maybe_deployment_name(name) and b"\x00" not in data[:1024]:
                self._report(ctx, _fatal(file.path, f"not UTF-8 text (byte {exc.start})"))
            return False
        if name.endswith((".tf", ".hcl")) or name.endswith(".tf.json"):
            folder = posixpath.dirname(file.path)
            self._terraform.setdefault(folder, []).append((file.path, text))
            return False
        if name.endswith(".py"):
            from sas.scan.iac import azure

            if azure.looks_like_python_v2(text):
                self._report(ctx, lambda: azure.parse_python_v2(text, file.path), file.path)
            return False
        if len(data) <= MAX_SIDE_FILE_BYTES:
            self._side_files[file.path] = text
        if name in _AZURE_NAMES:
            from sas.scan.iac import azure

            self._report(ctx, lambda: azure.parse_json_file(text, file.path, name), file.path)
            return False
        self._template(file.path, name, text, ctx)
        return False

    def _template(self, path: str, name: str, text: str, ctx: ScanContext) -> None:
        if not _has_markers(text):
            return
        from sas.scan.iac import cloudformation, yamlsrc

        try:
            doc = yamlsrc.load(text, json_hint=name.endswith(".json"))
        except yamlsrc.TemplateError as exc:
            if _looks_like_deployment_text(text):
                self._report(ctx, _fatal(path, str(exc), exc.line))
            return
        if cloudformation.looks_like(doc):
            self._report(ctx, lambda: cloudformation.parse(doc, path), path)
            return
        from sas.scan.iac import azure, serverless

        if serverless.looks_like(doc):
            self._deferred_serverless.append((path, text, doc))
        elif azure.looks_like_function_json(doc):
            self._report(ctx, lambda: azure.parse_json_file(text, path, "function.json"), path)

    def finish(self, ctx: ScanContext) -> None:
        if self._deferred_serverless:
            from sas.scan.iac import serverless

            for path, _text, doc in self._deferred_serverless:
                self._report(ctx, partial(serverless.parse, doc, path, self._side_files), path)
        if self._terraform:
            from sas.scan.iac import terraform

            for folder, files in sorted(self._terraform.items()):
                size = sum(len(text) for _, text in files)
                if size > MAX_TERRAFORM_BYTES:
                    message = f"{size} bytes of Terraform in one module: too large to parse here, not checked"
                    self._report(ctx, _fatal(files[0][0], message))
                    continue
                self._report(ctx, partial(terraform.parse, folder, files), folder or files[0][0])

    def _report(self, ctx: ScanContext, dep: Deployment | Callable[[], Deployment], path: str = "") -> None:
        try:
            if callable(dep):  # a parser call: a bug on odd input becomes a finding, never a traceback
                dep = dep()
            findings = self.checker(ctx).run(dep)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            # a checker bug on odd input must not hide the rest of the scan
            ctx.add(
                make_finding(
                    iac_rules.UNPARSABLE,
                    Location(path or getattr(dep, "path", "")),
                    f"deployment checks stopped early on this file: {type(exc).__name__}: {exc}"[:300],
                    evidence=type(exc).__name__,
                )
            )
            return
        seen: set[tuple[str, str, int | None, str]] = set()
        for finding in findings:
            key = (finding.rule_id, finding.location.path, finding.location.line, finding.evidence)
            if key not in seen:  # provider-level values are shared by every function: report them once
                seen.add(key)
                ctx.add(finding)
        if dep.functions:
            ctx.note(f"iac: {dep.path}: {len(dep.functions)} function(s) from {dep.fmt}")
        for function in dep.functions:
            handler = function.handler.value if function.handler is not None else None
            if isinstance(handler, str) and "." in handler:
                # "app.lambda_handler", "pkg.mod.handler" (Python), "src/app.handler" (Serverless paths)
                module = handler.rsplit(".", 1)[0]
                ctx.handler_modules.add(module if "/" in module else module.replace(".", "/"))


def _fatal(path: str, message: str, line: int | None = None) -> Deployment:
    """A deployment that could not be read at all: reported as SAS-IAC-000 at ``path``."""
    from sas.scan.iac.model import Deployment, ParseIssue, Src

    return Deployment("unknown", path, issues=(ParseIssue(Src(path, line), message, fatal=True),))


def _has_markers(text: str) -> bool:
    return (
        "AWSTemplateFormatVersion" in text
        or "AWS::" in text
        or "Resources" in text
        or ("service" in text and "provider" in text)
        or "bindings" in text
    )


def _looks_like_deployment_text(text: str) -> bool:
    head = text[:4096]
    return (
        "AWSTemplateFormatVersion" in head
        or "AWS::" in text[:65536]
        or ("service" in head and "provider" in head)
        or "Resources:" in head
        or '"Resources"' in head
        or '"bindings"' in head
    )


def _maybe_deployment_name(name: str) -> bool:
    return name.endswith((".yaml", ".yml", ".template", ".tf")) or name in _AZURE_NAMES or "template" in name


ANALYZERS = [IacAnalyzer]
