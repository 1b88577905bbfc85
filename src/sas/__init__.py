"""Serverless AI Shield: protect ML inference on FaaS platforms."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from sas.runtime.shield import Shield

__all__ = ["Shield", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `import sas` (the CLI, the scanner) never pays for the runtime, and the runtime never
    # pays for anything else.
    if name == "Shield":
        from sas.runtime.shield import Shield

        return Shield
    raise AttributeError(f"module 'sas' has no attribute {name!r}")
