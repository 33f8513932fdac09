"""Model references: ``churn@4``, ``churn@v4``, ``churn@production``, ``churn@latest``, and
the rules for model and alias names (so that every reference reads one way only)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ValidationError

__all__ = ["ModelRef", "check_alias", "check_model_name", "parse_model_ref"]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
_VERSION = re.compile(r"^[vV]?(\d+)$")


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: a model name plus a version number, an alias, or latest."""

    name: str
    version: int | None = None
    alias: str | None = None

    @property
    def latest(self) -> bool:
        """True for ``name@latest`` (and a bare ``name``)."""
        return self.version is None and self.alias is None


def check_model_name(name: str) -> str:
    """Model names: letters, digits, ``_ . -``; no ``@ / #`` or whitespace."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValidationError(
            f"{name!r} is not a valid model name: use letters, digits, '_', '.', '-' "
            "(no '@', '/', '#' or spaces; they have a meaning in references), at most 128 characters."
        )
    return name


def check_alias(alias: str) -> str:
    """Aliases follow the name rules, may not look like a version, and may not be ``latest``."""
    if not isinstance(alias, str) or not _NAME.fullmatch(alias) or len(alias) > 64:
        raise ValidationError(
            f"{alias!r} is not a valid alias: use letters, digits, '_', '.', '-', at most 64 characters."
        )
    if _VERSION.match(alias):
        raise ValidationError(
            f"{alias!r} cannot be an alias: it reads as a version number. Use a word such as "
            "'production' or 'staging'."
        )
    if alias.lower() == "latest":
        raise ValidationError("'latest' cannot be an alias: it always means the newest version.")
    return alias


def parse_model_ref(text: str) -> ModelRef:
    """Parse ``name@N``, ``name@vN``, ``name@alias``, ``name@latest`` or ``name``."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(f"A model reference must be a non-empty string, got {text!r}.")
    name, sep, tail = text.strip().partition("@")
    check_model_name(name)
    if not sep or tail.lower() == "latest":
        return ModelRef(name)
    match = _VERSION.match(tail)
    if match:
        if int(match.group(1)) < 1:
            raise ValidationError(f"{text!r}: versions start at 1.")
        return ModelRef(name, version=int(match.group(1)))
    if not _NAME.fullmatch(tail):
        raise ValidationError(
            f"{text!r} is not a model reference: use name@3, name@v3, name@alias or name@latest."
        )
    return ModelRef(name, alias=tail)
