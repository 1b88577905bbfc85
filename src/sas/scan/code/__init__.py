"""Handler-code rules (``SAS-CODE-###``): AST checks with a light taint from the event or request.

Why the stdlib ``ast`` and not Bandit or Semgrep: Bandit has no rule for ``joblib.load``,
``np.load(allow_pickle=True)``, Keras ``safe_mode=False`` or ``trust_remote_code`` and no notion of a FaaS
handler's event; Semgrep is a large native dependency with rule files to ship. A few hundred lines over ``ast``
know the three platforms' entry points and run in milliseconds per file.
"""

from __future__ import annotations

from sas.scan.code.analyzer import HandlerCodeAnalyzer, check_source, is_vendored_path

ANALYZERS = [HandlerCodeAnalyzer]

__all__ = ["ANALYZERS", "HandlerCodeAnalyzer", "check_source", "is_vendored_path"]
