"""The environment a run executed in: Python, platform, the versions of the packages the
process has imported, and the git commit (with a dirty flag) of the working folder."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["EnvironmentProbe", "git_info", "imported_packages", "python_info"]

_version_cache: dict[str, str | None] = {}


@cache
def _module_to_dists() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    return packages_distributions()


_packages_seen: tuple[int, dict[str, str]] = (-1, {})


def imported_packages() -> dict[str, str]:
    """{distribution: version} for every installed distribution the process has imported."""
    global _packages_seen
    if _packages_seen[0] == len(sys.modules):  # nothing imported since the last look
        return dict(_packages_seen[1])
    from importlib.metadata import PackageNotFoundError, version

    count = len(sys.modules)
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
    result = dict(sorted(out.items(), key=lambda kv: kv[0].lower()))
    _packages_seen = (count, result)
    return dict(result)


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


# git status costs a subprocess; runs started within this many seconds share one answer.
GIT_TTL_S = 5.0
_git_cache: dict[str, tuple[float, dict[str, Any] | None]] = {}


class EnvironmentProbe:
    """Collects the slow parts (git, package metadata) in a thread while the cell runs."""

    def __init__(self, folder: str | None = None):
        self._folder = folder or os.getcwd()
        cached = _git_cache.get(self._folder)
        self._thread: threading.Thread | None = None
        if cached is not None and time.monotonic() - cached[0] < GIT_TTL_S:
            self._git = cached[1]
        else:
            self._git = None
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            _module_to_dists()
            self._git = git_info(self._folder)
        except Exception:
            self._git = None
        _git_cache[self._folder] = (time.monotonic(), self._git)

    def result(self, notebook: str | None = None) -> dict[str, Any]:
        """The environment, once the probe has finished (it waits at most 5 s)."""
        if self._thread is not None:
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
