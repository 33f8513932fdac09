"""The store's warm launcher as users run into it: real processes asking for it at once,
real kernels keeping it, real deployments forked from it. At most one per store, it exits
once nothing uses it, `jupyter-mlops deployments --all` lists it, and the deployments it
forked keep serving when it is terminated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.serving.launcher import (
    IDLE_ENV,
    launcher_info,
    launchers,
    stop_launcher,
)

from .conftest import cli
from .retraining_helpers import wait_for
from .serving_helpers import Client, oip_body, predictions, processes_mentioning, register_churn

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
IDLE_S = "2"


def launcher_pids(store: Path) -> list[int]:
    """Launcher processes of ``store``, found independently of the product: the launcher
    module and the store on the command line, and not one of its forks (a fork names
    itself after its deployment)."""
    found = []
    for pid in processes_mentioning(str(store)):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
            with open(f"/proc/{pid}/comm") as fh:
                comm = fh.read().strip()
        except OSError:
            continue
        if b"jupyter_mlops.serving.launcher" in argv and not comm.startswith(("d-", "mlops-re")):
            found.append(pid)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def client_env(store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env.update(MLOPS_HOME=str(store), PYTHONPATH=str(REPO), **{IDLE_ENV: IDLE_S})
    return env


@pytest.fixture
def idle_store(store_dir, monkeypatch):
    """The store, with launchers that exit after 2 idle seconds; nothing left afterwards."""
    monkeypatch.setenv(IDLE_ENV, IDLE_S)
    yield store_dir
    for d in mlops.deployments().itertuples():
        mlops.undeploy(d.deployment_id)
    stop_launcher(store_dir)
    wait_for(lambda: processes_mentioning(str(store_dir)) == [], 30)


CLIENT = textwrap.dedent(
    """
    import json, os
    from pathlib import Path
    from jupyter_mlops.serving.launcher import ensure_launcher, launcher_info, wait_for_launcher
    home = Path(os.environ["MLOPS_HOME"])
    started = ensure_launcher(home, dict(os.environ))
    info = wait_for_launcher(home, started, 90, lambda: launcher_info(home))
    print(json.dumps({"spawned": started is not None, "pid": info and info["pid"]}))
    """
)


def test_concurrent_clients_share_one_launcher_which_exits_when_idle(idle_store):
    clients = [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT],
            env=client_env(idle_store),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(5)
    ]
    most = 0  # launcher processes of the store seen at once, while the clients wait
    while any(c.poll() is None for c in clients):
        most = max(most, len(launcher_pids(idle_store)))
        time.sleep(0.02)
    answers = []
    for c in clients:
        out, err = c.communicate(timeout=10)
        assert c.returncode == 0, err
        answers.append(json.loads(out))
    pids = {a["pid"] for a in answers}
    assert len(pids) == 1 and None not in pids, answers  # every client reached the same one
    assert sum(a["spawned"] for a in answers) == 1  # the others connected to the winner
    assert most == 1
    [pid] = pids
    assert launcher_pids(idle_store) == [pid]
    # no deployment, no kernel, no request: it exits after its idle time
    wait_for(lambda: not alive(pid), 30)
    assert launcher_pids(idle_store) == []
    assert "idle for 2 s, exiting" in (idle_store / "serving" / "launcher.log").read_text()


KERNEL_CODE = """
from pathlib import Path
from jupyter_mlops.serving.launcher import ensure_launcher, store_env
from jupyter_mlops.store import current_store
ensure_launcher(current_store().home, store_env(current_store()))
"""


def test_a_kernel_keeps_the_launcher_until_it_ends(idle_store):
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", env=client_env(idle_store))
    try:
        reply = kc.execute_interactive(KERNEL_CODE, timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        info = wait_for(lambda: launcher_info(idle_store), 60)
        pid = info["pid"]
        # several idle periods later the kernel still uses it: it stays
        deadline = time.monotonic() + 3 * float(IDLE_S)
        while time.monotonic() < deadline:
            assert alive(pid)
            time.sleep(0.2)
        info = launcher_info(idle_store)
        assert info["pid"] == pid and info["kernels"] == 1 and info["idle_since"] is None
        assert [x["pid"] for x in launchers(idle_store)] == [pid]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    wait_for(lambda: not alive(pid), 30)  # the kernel ended: it exits after its idle time


def test_deployments_outlive_a_terminated_launcher_and_the_cli_lists_it(idle_store):
    x, (m1, m2) = register_churn(2)
    first = mlops.deploy("churn@1")  # starts the store's launcher, which forks it
    second = mlops.deploy("churn@2")
    [launcher] = launcher_pids(idle_store)
    for d in (first, second):
        with open(f"/proc/{d.pid}/comm") as fh:
            assert fh.read().strip() == d.deployment_id[:15]  # forked by the launcher
        assert os.getsid(d.pid) == d.pid != os.getsid(launcher)  # a session of its own

    out = cli(idle_store, "deployments", "--all")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "launchers" in text and str(launcher) in text and str(idle_store) in text
    line = next(row for row in text.splitlines() if row.strip().startswith(str(launcher)))
    assert "in use" in line  # two live deployments keep it
    assert first.deployment_id in line and second.deployment_id in line

    # deployments keep it past its idle time
    deadline = time.monotonic() + 2 * float(IDLE_S)
    while time.monotonic() < deadline:
        assert alive(launcher)
        time.sleep(0.2)

    os.kill(launcher, signal.SIGTERM)
    wait_for(lambda: not alive(launcher), 30)
    assert not (idle_store / "serving" / "launcher.sock").exists()  # it cleaned up
    # both keep answering, for a while after the launcher is gone
    deadline = time.monotonic() + 3
    answered = 0
    while time.monotonic() < deadline:
        for d, model in ((first, m1), (second, m2)):
            c = Client(d.port)
            status, _, body = c.post("/v2/models/churn/infer", oip_body(x.iloc[:3]))
            c.close()
            assert status == 200 and body["outputs"][0]["data"] == predictions(model, x.iloc[:3])
            answered += 1
        time.sleep(0.1)
    assert answered >= 4
    assert list(mlops.deployments().status) == ["running", "running"]
    assert cli(idle_store, "deployments", "--all").stdout.count(str(idle_store)) == 0
    mlops.undeploy("churn")
    assert not alive(first.pid) and not alive(second.pid)
