"""The warm-up's import gate: while the extension's background thread imports skops (and
with it scikit-learn), a cell importing scikit-learn waits instead of racing it into a
half-initialized module."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import threading, time
from jupyter_mlops.importgate import serialized_imports
order, opened = [], threading.Event()

def warm_up():
    with serialized_imports():
        opened.set()
        time.sleep(0.3)
        import skops.io
        order.append("warm-up done")

thread = threading.Thread(target=warm_up)
thread.start()
opened.wait()
import json  # not guarded: no wait
order.append("json")
from sklearn.svm import LinearSVC
from sklearn.linear_model import LogisticRegression
order.append("cell imported")
thread.join()
import builtins
print(order, builtins.__import__.__name__)
"""


def test_a_cell_importing_sklearn_waits_for_the_warm_up():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['json', 'warm-up done', 'cell imported'] __import__"
