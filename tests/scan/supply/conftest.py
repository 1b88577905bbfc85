"""Fixtures of the supply-chain tests (defined in ``supply_helpers``)."""

from supply_helpers import pristine

__all__ = ["pristine"]
