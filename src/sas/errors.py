"""The one error base class. Its message is for the user; the CLI catches it once and exits 2."""

from __future__ import annotations


class SasError(Exception):
    """A problem the user can act on (bad path, unreadable configuration, ...).

    ``str(error)`` is a one-line message fit for stderr; never a traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(SasError):
    """The configuration could not be read or is invalid."""


class InputError(SasError):
    """A path or input given on the command line cannot be used."""
