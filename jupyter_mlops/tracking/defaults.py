"""The default experiment of this process (light: imported when the extension loads)."""

from __future__ import annotations

__all__ = ["default_experiment", "experiment_is_set", "set_default_experiment"]

_experiment: str | None = None


def set_default_experiment(name: str | None) -> None:
    """The experiment runs go to when none is named (None: back to "default")."""
    global _experiment
    _experiment = name


def default_experiment() -> str:
    """The current default experiment name ("default" until one is set)."""
    return _experiment or "default"


def experiment_is_set() -> bool:
    """Whether an experiment was chosen explicitly (or by the extension from the notebook)."""
    return _experiment is not None
