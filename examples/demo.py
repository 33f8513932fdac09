"""`make demo`: run the quick-start notebook headless and print what it recorded."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def main(path: str) -> int:
    notebook = Path(path).resolve()
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    nb = nbformat.read(notebook, as_version=4)
    started = time.time()
    print(f"running {notebook.name} in {notebook.parent} ...")
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    # JupyterLab tells the kernel which notebook it runs; do the same so runs land in the
    # experiment named after the notebook.
    client.execute(env={**os.environ, "JPY_SESSION_NAME": str(notebook)})
    print(f"executed {len(nb.cells)} cells in {time.time() - started:.1f} s")
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith("%%track"):
            print(f"  tracked: {cell.source.splitlines()[0]}")
    os.chdir(notebook.parent)
    import jupyter_mlops as mlops

    recent = mlops.runs(
        experiment=notebook.stem, filter=f"start_time >= {started}", order_by="-metrics.accuracy"
    )
    print(f"store: {mlops.open_store().describe()}")
    print(f"runs recorded now: {len(recent)} (parents and search candidates)")
    cols = [
        c for c in ["run_id", "name", "status", "duration_s", "metrics.accuracy"] if c in recent
    ]
    print(recent[cols].assign(run_id=recent.run_id.str[:8]).head(10).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "examples/quickstart.ipynb"))
