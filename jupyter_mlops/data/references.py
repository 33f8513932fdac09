"""Data references: ``name@v3``, ``name@3``, ``name@latest``, ``name`` (latest), and content
hashes ``#3fa9c1`` (a unique prefix of at least 6 characters, alone or after the name)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ValidationError

__all__ = ["DataRef", "check_dataset_name", "parse_data_ref"]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/ ]{0,254}$")
MIN_HASH_PREFIX = 6


@dataclass(frozen=True)
class DataRef:
    """A parsed reference: a dataset name and a version number, ``latest``, or a hash prefix."""

    name: str | None
    version: int | None = None
    hash_prefix: str | None = None

    @property
    def latest(self) -> bool:
        """True when the reference means the newest version of ``name``."""
        return self.version is None and self.hash_prefix is None


def check_dataset_name(name: str) -> str:
    """A dataset name: letters, digits, ``_ . - /`` and spaces; no ``@`` or ``#``."""
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith("/"):
        raise ValidationError(
            f"{name!r} is not a valid dataset name: use letters, digits, '_', '.', '-', '/' "
            "(no '@' or '#', which start a version or a hash), at most 255 characters."
        )
    return name


def parse_data_ref(text: str) -> DataRef:
    """Parse a data reference; raises ``ValidationError`` saying which forms exist."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(f"A data reference must be a non-empty string, got {text!r}.")
    ref = text.strip()
    forms = "use name@v3, name@3, name@latest, name, or a content hash #3fa9c1 (6+ characters)"
    if "#" in ref:
        name, _, prefix = ref.partition("#")
        prefix = prefix.lower()
        if len(prefix) < MIN_HASH_PREFIX or not re.fullmatch(r"[0-9a-f]+", prefix):
            raise ValidationError(
                f"{text!r}: a content hash needs {MIN_HASH_PREFIX}+ hex characters; {forms}."
            )
        return DataRef(check_dataset_name(name) if name else None, None, prefix)
    if "@" in ref:
        name, _, version = ref.rpartition("@")
        check_dataset_name(name)
        if version.lower() == "latest":
            return DataRef(name)
        match = re.fullmatch(r"[vV]?(\d+)", version)
        if not match or int(match.group(1)) < 1:
            raise ValidationError(f"{text!r}: {version!r} is not a version; {forms}.")
        return DataRef(name, int(match.group(1)))
    return DataRef(check_dataset_name(ref))
