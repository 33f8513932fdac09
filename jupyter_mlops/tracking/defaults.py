"""The default experiment of this process (light: imported when the extension loads)."""

from __future__ import annotations

__all__ = ["JOB_ENV", "default_experiment", "experiment_is_set", "set_default_experiment"]

# Set by CI and retraining jobs for the processes they start: runs are tagged with the job
# (so the job finds them) and `%%track --register` leaves registering to the job's gate.
JOB_ENV = "MLOPS_JOB"

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
