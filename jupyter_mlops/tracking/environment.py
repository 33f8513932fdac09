"""The environment a run executed in: Python, platform, the versions of the packages the
process has imported, and the git commit (with a dirty flag) of the working folder."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["EnvironmentProbe", "git_info", "imported_packages", "python_info"]

_version_cache: dict[str, str | None] = {}


@cache
def _module_to_dists() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    return packages_distributions()


def imported_packages() -> dict[str, str]:
    """{distribution: version} for every installed distribution the process has imported."""
    from importlib.metadata import PackageNotFoundError, version

    mapping = _module_to_dists()
    tops = {name.split(".", 1)[0] for name in list(sys.modules)}
    out: dict[str, str] = {}
    for top in tops:
        for dist in mapping.get(top, ()):
            if dist not in _version_cache:
                try:
                    _version_cache[dist] = version(dist)
                except PackageNotFoundError:
                    _version_cache[dist] = None
            found = _version_cache[dist]
            if found:
                out[dist] = found
    return dict(sorted(out.items(), key=lambda kv: kv[0].lower()))


def python_info() -> dict[str, Any]:
    """Interpreter and platform."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "executable": sys.executable,
    }


def git_info(folder: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """Commit, branch and dirty flag of the git work tree holding ``folder``, or None."""
    cwd = Path(folder or os.getcwd())
    if not any((p / ".git").exists() for p in (cwd, *cwd.parents)):
        return None
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    info: dict[str, Any] = {"commit": None, "branch": None, "dirty": False}
    for line in out.stdout.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2]
            info["commit"] = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            info["branch"] = line.split(" ", 2)[2]
        elif not line.startswith("#"):
            info["dirty"] = True
    return info


class EnvironmentProbe:
    """Collects the slow parts (git, package metadata) in a thread while the cell runs."""

    def __init__(self, folder: str | None = None):
        self._git: dict[str, Any] | None = None
        self._thread = threading.Thread(target=self._run, args=(folder,), daemon=True)
        self._thread.start()

    def _run(self, folder: str | None) -> None:
        try:
            _module_to_dists()
            self._git = git_info(folder)
        except Exception:
            self._git = None

    def result(self, notebook: str | None = None) -> dict[str, Any]:
        """The environment, once the probe has finished (it waits at most 5 s)."""
        self._thread.join(timeout=5)
        env = python_info()
        env["packages"] = imported_packages()
        env["git"] = self._git
        env["cwd"] = os.getcwd()
        if notebook:
            env["notebook"] = notebook
        return env


def warm_up() -> None:
    """Load package metadata in the background so the first tracked cell does not pay for it."""

    def work() -> None:
        try:
            _module_to_dists()
        except Exception:
            pass

    threading.Thread(target=work, daemon=True).start()
