"""A full disk under the store: the user's cells keep running, and a run that completed is
recorded with its true outcome once the store can be written again (or by the reaper, from
the outcome its process kept) — never as a crash that did not happen.

The store lives on a small tmpfs that the test mounts and fills for real (root only).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.store import reset_current_store
from jupyter_mlops.tracking.active import TrackingWarning

from .conftest import run_cell

REPO = Path(__file__).resolve().parents[1]


def _mount(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")


def fill(folder: Path) -> Path:
    """Write a filler file until the disk is full (ENOSPC)."""
    filler = folder / "filler"
    block = b"\0" * (1 << 16)
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    # the last partial page too
    with open(filler, "ab", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 512)
        except OSError:
            pass
    return filler


@pytest.fixture
def small_disk(store_dir: Path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    _mount(store_dir)
    yield store_dir
    reset_current_store()
    subprocess.run(["umount", "-l", str(store_dir)], check=False)


SETUP = """
import warnings
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
"""


def test_a_completed_cell_is_saved_with_its_outcome_when_space_returns(small_disk: Path, ip):
    run_cell(ip, SETUP)
    assert run_cell(
        ip, "%%track first --no-data\nmodel = LogisticRegression(max_iter=5000).fit(X, y)"
    ).success
    ip.user_ns.update(fill=fill, folder=small_disk)
    # the disk fills while the cell runs (it writes a large file), after its run started
    with pytest.warns(TrackingWarning, match="kept in memory"):
        result = run_cell(
            ip, "%%track on-full-disk --no-data\nC = 0.5\nmodel = LogisticRegression(C=C, max_iter=5000).fit(X, y)\naccuracy = model.score(X, y)\nfiller = fill(folder)"
        )  # fmt: skip
    filler = ip.user_ns["filler"]
    assert result.success  # the user's code ran
    assert ip.user_ns["accuracy"] > 0.9
    filler.unlink()
    # the next tracked cell saves the pending run first
    assert run_cell(ip, "%%track after --no-data\nz = 1").success
    runs = mlops.runs(order_by="start_time")
    assert list(runs.name) == ["first", "on-full-disk", "after"]
    late = mlops.get_run(runs.run_id[1])
    assert late.status == "finished" and late.error is None
    assert late.params["C"] == 0.5 and late.metrics["accuracy"] > 0.9
    assert late.duration_s is not None and late.duration_s < 60


def test_a_process_that_ends_while_the_disk_is_full_is_not_called_killed(small_disk: Path):
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        import jupyter_mlops as mlops
        from sklearn.linear_model import LogisticRegression
        with mlops.track("warm") as run:
            pass
        def fill():
            with open(Path({str(small_disk)!r}) / "filler", "wb", buffering=0) as out:
                try:
                    while True:
                        out.write(b"\\0" * 4096)
                except OSError:
                    pass
        with mlops.track("ends-on-full-disk") as run:
            accuracy = 0.75
            run.log_metric("accuracy", accuracy)
            fill()
        print("RUN", run.run_id, flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLOPS_HOME": str(small_disk)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "could not be saved" in done.stderr
    run_id = next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("RUN"))
    (small_disk / "filler").unlink()
    reset_current_store()
    run = mlops.get_run(run_id)  # opening the store reaps runs of dead processes
    assert run.status == "finished", run.error
    assert "could not save what it captured" in run.error
