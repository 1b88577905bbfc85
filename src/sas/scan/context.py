"""State of one scan run, handed to every analyzer: settings, collected findings and errors, progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sas.scan.findings import Component, Finding, ScanErrorRecord
from sas.scan.settings import ScanSettings

ProgressHook = Callable[[int, int, str], None]  # (files done, bytes done, current path)


@dataclass
class ScanContext:
    settings: ScanSettings = field(default_factory=ScanSettings)
    findings: list[Finding] = field(default_factory=list)
    errors: list[ScanErrorRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    components: list[Component] = field(default_factory=list)
    progress: ProgressHook | None = None
    files_done: int = 0
    bytes_done: int = 0
    total_bytes_seen: int = 0  # uncompressed bytes walked so far, for the total-size limit
    # module paths ("app", "src/app") the deployment files name as function handlers, for the handler-code
    # rules: a file named as a handler is the function's own code, whatever a RECORD file claims
    handler_modules: set[str] = field(default_factory=set)

    def add(self, finding: Finding) -> None:
        if finding.rule_id not in self.settings.ignore_rules:
            self.findings.append(finding)

    def error(self, path: str, message: str) -> None:
        self.errors.append(ScanErrorRecord(path, message))

    def component(self, component: Component) -> None:
        self.components.append(component)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def advance(self, path: str, size: int) -> None:
        self.files_done += 1
        self.bytes_done += size
        if self.progress is not None:
            self.progress(self.files_done, self.bytes_done, path)
