"""Loop metrics: metric-named variables assigned in a ``%%track`` cell's loops become
stepped metrics, and the cell behaves exactly as without the magic. Driven through a
real IPython shell with ``%load_ext jupyter_mlops``."""

from __future__ import annotations

import math
import traceback

import pytest

import jupyter_mlops as mlops

from .conftest import run_cell


def only_run():
    frame = mlops.runs(experiment="*")
    assert len(frame) == 1, frame
    return mlops.get_run(frame.run_id[0])


def curve(run, name):
    history = run.metric_history(name)
    return list(history.step), list(history.value)


EPOCHS = """\
for epoch in range(5):
    loss = 1.0 / (epoch + 1)
    val_loss = loss * 1.5
"""


def test_a_plain_loop_gives_one_point_per_iteration(ip):
    assert run_cell(ip, "%%track plain\n" + EPOCHS).success
    run = only_run()
    assert curve(run, "loss") == ([0, 1, 2, 3, 4], pytest.approx([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5]))
    steps, values = curve(run, "val_loss")
    assert steps == [0, 1, 2, 3, 4]
    assert values == pytest.approx([1.5 / (e + 1) for e in range(5)])
    # the final value is what the variable holds when the cell ends, as before
    assert run.metrics["loss"] == pytest.approx(ip.user_ns["loss"]) == pytest.approx(0.2)
    assert run.metric_sources["val_loss"] == "loss * 1.5"
    assert run.params == {}  # the loop's variables are neither params nor extra metrics
    assert set(run.metrics) == {"loss", "val_loss"}


def test_a_while_loop(ip):
    code = (
        "%%track\n"
        "w, rmse, it = 0.0, 1.0, 0\n"
        "while rmse > 0.01:\n"
        "    w = w + 0.5 * (1.0 - w)\n"
        "    rmse = abs(1.0 - w)\n"
        "    it += 1\n"
    )
    assert run_cell(ip, code).success
    run = only_run()
    steps, values = curve(run, "rmse")
    assert steps == list(range(ip.user_ns["it"])) == list(range(7))
    assert values == pytest.approx([0.5**k for k in range(1, 8)])
    assert run.metrics["rmse"] == pytest.approx(ip.user_ns["rmse"])
    assert "w" not in run.params and "rmse" not in run.params


def test_nested_loops_count_steps_per_name_without_gaps(ip):
    code = (
        "%%track nested\n"
        "for epoch in range(3):\n"
        "    for batch in range(4):\n"
        "        loss = epoch * 10 + batch\n"
        "    val_loss = epoch / 10\n"
    )
    assert run_cell(ip, code).success
    run = only_run()
    assert curve(run, "loss") == (list(range(12)), [e * 10 + b for e in range(3) for b in range(4)])
    assert curve(run, "val_loss") == ([0, 1, 2], pytest.approx([0.0, 0.1, 0.2]))


def test_break_and_continue(ip):
    code = (
        "%%track\n"
        "for i in range(10):\n"
        "    acc = i / 10\n"
        "    if i % 2:\n"
        "        continue\n"
        "    f1 = i / 100\n"
        "    if i == 6:\n"
        "        break\n"
        "else:\n"
        "    never = True\n"
    )
    assert run_cell(ip, code).success
    run = only_run()
    assert curve(run, "acc") == ([0, 1, 2, 3, 4, 5, 6], pytest.approx([i / 10 for i in range(7)]))
    assert curve(run, "f1") == ([0, 1, 2, 3], pytest.approx([0, 0.02, 0.04, 0.06]))
    assert "never" not in ip.user_ns and ip.user_ns["i"] == 6


def test_comprehensions_and_generator_expressions_run_unchanged(ip):
    code = (
        "%%track\n"
        "squares = [x * x for x in range(4)]\n"
        "for epoch in range(3):\n"
        "    batch_losses = [epoch + b / 10 for b in range(3)]\n"  # a list: skipped silently
        "    loss = sum(v for v in batch_losses) / len(batch_losses)\n"
        "    best = max((score := v) for v in batch_losses)\n"  # walrus in a genexp
        "lazy = (x * 2 for x in range(3))\n"
    )
    assert run_cell(ip, code).success
    ns = ip.user_ns
    assert ns["squares"] == [0, 1, 4, 9]
    assert ns["score"] == pytest.approx(2.2) and ns["best"] == pytest.approx(2.2)
    assert list(ns["lazy"]) == [0, 2, 4]  # still a lazy generator, consumed after the cell
    run = only_run()
    assert curve(run, "loss") == ([0, 1, 2], pytest.approx([0.1, 1.1, 2.1]))
    with pytest.raises(mlops.MlopsError):
        run.metric_history("batch_losses")
    # `score` was bound by a walrus inside a generator expression, not by a statement of
    # the loop: its final value only, as before
    assert curve(run, "score") == ([0], pytest.approx([2.2]))


def test_a_generator_function_defined_in_the_cell_is_not_rewritten(ip):
    code = (
        "%%track\n"
        "def batches(n):\n"
        "    for i in range(n):\n"
        "        loss = i * 0.5\n"
        "        yield loss\n"
        "for batch_loss in batches(3):\n"
        "    score = batch_loss + 1\n"
    )
    assert run_cell(ip, code).success
    run = only_run()
    assert curve(run, "score") == ([0, 1, 2], pytest.approx([1.0, 1.5, 2.0]))
    assert "loss" not in run.metrics  # a local of the generator, not the cell's
    # the generator is the user's own code: it runs later, untracked, as written
    assert run_cell(ip, "later = list(batches(4))").success
    assert ip.user_ns["later"] == [0.0, 0.5, 1.0, 1.5]
    assert len(curve(mlops.get_run(run.run_id), "score")[0]) == 3


def test_tuple_unpacking_and_augmented_assignment(ip):
    code = (
        "%%track\n"
        "def evaluate(e):\n"
        "    return 1.0 / (e + 1), e / 4\n"
        "for epoch in range(4):\n"
        "    total_loss = 0.0\n"  # a reset: a bare number, not a value of the curve
        "    for b in range(3):\n"
        "        total_loss += b + epoch\n"
        "    loss, acc = evaluate(epoch)\n"
        "    (precision, [recall, *rest]) = (acc, [acc / 2, 1, 2])\n"
    )
    assert run_cell(ip, code).success
    run = only_run()
    expected = [t for e in range(4) for t in (e, 2 * e + 1, 3 * e + 3)]
    assert curve(run, "total_loss") == (list(range(12)), pytest.approx(expected))
    assert run.metric_sources["total_loss"] == "total_loss += b + epoch"
    assert curve(run, "loss")[1] == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4])
    assert curve(run, "acc") == ([0, 1, 2, 3], pytest.approx([0, 0.25, 0.5, 0.75]))
    assert curve(run, "precision")[1] == pytest.approx([0, 0.25, 0.5, 0.75])
    assert curve(run, "recall")[1] == pytest.approx([0, 0.125, 0.25, 0.375])


def test_an_exception_inside_the_loop(ip):
    body = (
        "for epoch in range(10):\n"
        "    loss = 1.0 / (epoch + 1)\n"
        "    if epoch == 3:\n"
        "        raise ValueError(f'diverged at {epoch}')\n"
        "    val_loss = loss * 2\n"
    )

    def cell_frames(err):
        frames = traceback.extract_tb(err.__traceback__)
        return [(f.lineno, f.line, f.name) for f in frames if f.filename.startswith("<ipython")]

    plain = run_cell(ip, body).error_in_exec
    result = run_cell(ip, "%%track boom\n" + body)
    err = result.error_in_exec
    assert type(err) is ValueError and err.args == ("diverged at 3",)
    assert cell_frames(err)[-1] == cell_frames(plain)[-1]
    assert cell_frames(err)[-1][:2] == (4, "raise ValueError(f'diverged at {epoch}')")
    run = only_run()
    assert run.status == "failed"
    assert "line 4" in run.error and "raise ValueError(f'diverged at {epoch}')" in run.error
    assert curve(run, "loss") == ([0, 1, 2, 3], pytest.approx([1, 1 / 2, 1 / 3, 1 / 4]))
    assert curve(run, "val_loss") == ([0, 1, 2], pytest.approx([2, 1, 2 / 3]))


def test_interrupt_inside_the_loop_keeps_the_values_so_far(ip):
    code = (
        "%%track stop\n"
        "for step in range(100):\n"
        "    loss = step * 1.0\n"
        "    if step == 41:\n"
        "        raise KeyboardInterrupt\n"
    )
    assert isinstance(run_cell(ip, code).error_in_exec, KeyboardInterrupt)
    run = only_run()
    assert run.status == "interrupted"
    assert curve(run, "loss") == (list(range(42)), [float(s) for s in range(42)])


CELL = """\
import math
def decay(e):
    return math.exp(-e)
history = []
for epoch in range(4):
    loss = decay(epoch)
    acc, f1 = 1 - loss, (1 - loss) / 2
    total_error = 0
    for b in range(2):
        total_error += loss / 2
    history.append(round(loss, 4))
    print(f"epoch {epoch}: loss={loss:.4f} acc={acc:.3f}")
    names_inside = sorted(dir())
    globals_inside = sorted(globals())
squares = {i: i * i for i in range(3)}
"""


def _namespace(ip):
    skip = {"In", "Out", "exit", "quit", "get_ipython"}
    return {
        k: v
        for k, v in ip.user_ns.items()
        if k not in skip and not k.startswith("_") and not callable(v) and k != "math"
    }


def test_namespace_and_output_are_identical_with_and_without_the_magic(ip, capsys):
    capsys.readouterr()
    assert run_cell(ip, CELL).success
    plain_out = capsys.readouterr().out
    plain_names = set(ip.user_ns)
    plain_values = _namespace(ip)
    assert callable(ip.user_ns["decay"])

    ip.reset(new_session=True)
    mlops.runs()  # the same store
    run_cell(ip, "%load_ext jupyter_mlops")
    capsys.readouterr()
    assert run_cell(ip, "%%track same\n" + CELL).success
    tracked_out = capsys.readouterr().out
    assert set(ip.user_ns) == plain_names
    assert _namespace(ip) == plain_values  # names seen by dir()/globals() inside the loop too
    assert ip.user_ns["decay"](0) == 1.0
    run = only_run()
    assert run.stdout == plain_out
    assert tracked_out.startswith(plain_out)  # then only the run card
    assert len(curve(run, "loss")[0]) == 4 and len(curve(run, "total_error")[0]) == 8


def test_no_steps_records_only_final_values(ip):
    assert run_cell(ip, "%%track --no-steps\n" + EPOCHS).success
    run = only_run()
    assert curve(run, "loss") == ([0], pytest.approx([0.2]))
    assert curve(run, "val_loss") == ([0], pytest.approx([0.3]))


def test_a_cell_without_loop_metrics_runs_as_written(ip):
    code = (
        "%%track\n"
        "from jupyter_mlops.tracking.active import active_run\n"
        "recorder = active_run().steps\n"
        "for i in range(3):\n"
        "    w = i * 2\n"
        "accuracy = 0.5\n"
    )
    assert run_cell(ip, code).success
    assert ip.user_ns["recorder"] is None
    assert curve(only_run(), "accuracy") == ([0], [0.5])


def test_the_buffer_is_readable_while_the_cell_runs(ip):
    code = (
        "%%track live\n"
        "from jupyter_mlops.tracking.active import active_run\n"
        "seen = []\n"
        "for epoch in range(3):\n"
        "    loss = epoch + 0.5\n"
        "    seen.append(active_run().steps.points('loss')[0])\n"
    )
    assert run_cell(ip, code).success
    assert ip.user_ns["seen"] == [[0.5], [0.5, 1.5], [0.5, 1.5, 2.5]]


def test_values_that_are_not_one_number_are_skipped_and_steps_stay_contiguous(ip):
    code = (
        "%%track\n"
        "import numpy as np\n"
        "for i in range(6):\n"
        "    score = [np.float32(0.5), np.array(0.25), 'n/a', np.arange(3), True, 10**400][i]\n"
        "    loss = float('nan') if i == 2 else np.float64(i)\n"
    )
    assert run_cell(ip, code).success
    run = only_run()
    assert curve(run, "score") == ([0, 1], [0.5, 0.25])
    steps, values = curve(run, "loss")
    assert steps == [0, 1, 2, 3, 4, 5]
    assert math.isnan(values[2]) and values[:2] == [0.0, 1.0] and values[3:] == [3.0, 4.0, 5.0]


def test_explicit_log_metric_of_the_same_name_is_not_counted_twice(ip):
    code = (
        "%%track\n"
        "import jupyter_mlops as mlops\n"
        "for epoch in range(4):\n"
        "    loss = 1.0 / (epoch + 1)\n"
        "    mlops.log_metric('loss', loss * 100, step=epoch * 10)\n"
        "    acc = epoch / 4\n"
    )
    assert run_cell(ip, code).success
    run = only_run()
    assert curve(run, "loss") == ([0, 10, 20, 30], pytest.approx([100, 50, 100 / 3, 25]))
    assert curve(run, "acc") == ([0, 1, 2, 3], pytest.approx([0, 0.25, 0.5, 0.75]))


def test_a_value_assigned_again_after_the_loop_is_the_metric_and_closes_the_curve(ip):
    code = (
        "%%track\n"
        "import statistics\n"
        "for fold in range(3):\n"
        "    score = 0.8 + fold / 100\n"
        "score = statistics.mean([0.8, 0.81, 0.82]) + 0.1\n"
    )
    assert run_cell(ip, code).success
    run = only_run()
    assert curve(run, "score") == ([0, 1, 2, 3], pytest.approx([0.8, 0.81, 0.82, 0.91]))
    assert run.metrics["score"] == pytest.approx(0.91)
    assert run.metric_sources["score"] == "statistics.mean([0.8, 0.81, 0.82]) + 0.1"


def test_loop_variables_are_not_curves_and_metrics_option_adds_names(ip):
    code = (
        "%%track --metrics gap\n"
        "for score in [0.1, 0.2, 0.3]:\n"
        "    gap = 1 - score\n"
        "    margin = score * 2\n"
    )
    assert run_cell(ip, code).success
    run = only_run()
    assert "score" not in run.metrics
    assert curve(run, "gap") == ([0, 1, 2], pytest.approx([0.9, 0.8, 0.7]))
    assert "margin" not in run.metrics and "margin" not in run.params


def test_loops_inside_if_with_try_and_magics_inside_the_loop(ip, capsys):
    code = (
        "%%track\n"
        "import contextlib\n"
        "if True:\n"
        "    with contextlib.nullcontext():\n"
        "        try:\n"
        "            for i in range(3):\n"
        "                !echo shell-$i\n"
        "                %time mae = i * 2\n"
        "                mse = i ** 2\n"
        "        finally:\n"
        "            done = True\n"
    )
    capsys.readouterr()
    assert run_cell(ip, code).success
    out = capsys.readouterr().out
    assert "shell-0" in out and "shell-2" in out and "Wall time" in out
    run = only_run()
    assert curve(run, "mse") == ([0, 1, 2], [0.0, 1.0, 4.0])
    # assigned by %time's own code, not by a statement of the loop: its final value
    assert curve(run, "mae") == ([0], [4.0])
    assert ip.user_ns["done"] is True


def test_manual_cv_folds_and_partial_fit_in_scikit_learn(ip):
    setup = (
        "import numpy as np\n"
        "from sklearn.datasets import load_breast_cancer\n"
        "from sklearn.linear_model import SGDClassifier\n"
        "from sklearn.model_selection import KFold\n"
        "from sklearn.preprocessing import StandardScaler\n"
        "X, y = load_breast_cancer(return_X_y=True)\n"
        "X = StandardScaler().fit_transform(X)\n"
    )
    assert run_cell(ip, setup).success
    code = (
        "%%track cv-folds\n"
        "fold_scores = []\n"
        "for k, (train, test) in enumerate(KFold(5, shuffle=True, random_state=0).split(X)):\n"
        "    clf = SGDClassifier(random_state=0)\n"
        "    for epoch in range(3):\n"
        "        clf.partial_fit(X[train], y[train], classes=np.unique(y))\n"
        "        train_acc = clf.score(X[train], y[train])\n"
        "    score = clf.score(X[test], y[test])\n"
        "    fold_scores.append(score)\n"
        "mean_score = float(np.mean(fold_scores))\n"
    )
    assert run_cell(ip, code).success
    run = only_run()
    steps, values = curve(run, "score")
    assert steps == [0, 1, 2, 3, 4]
    assert values == pytest.approx(ip.user_ns["fold_scores"])
    assert curve(run, "train_acc")[0] == list(range(15))
    assert run.metrics["mean_score"] == pytest.approx(ip.user_ns["mean_score"])
    assert run.metrics["score"] == pytest.approx(ip.user_ns["fold_scores"][-1])
    assert run.metric_sources["score"] == "clf.score(X[test], y[test])"


def test_pytorch_loop_records_python_floats_and_0d_tensors(ip):
    pytest.importorskip("torch")
    code = (
        "%%track torch\n"
        "import torch\n"
        "torch.manual_seed(0)\n"
        "net = torch.nn.Linear(3, 1)\n"
        "opt = torch.optim.SGD(net.parameters(), lr=0.1)\n"
        "x, y = torch.randn(32, 3), torch.randn(32, 1)\n"
        "for epoch in range(5):\n"
        "    opt.zero_grad()\n"
        "    loss = torch.nn.functional.mse_loss(net(x), y)\n"
        "    loss.backward()\n"
        "    opt.step()\n"
        "    train_loss = loss.item()\n"
    )
    assert run_cell(ip, code).success
    run = only_run()
    steps, values = curve(run, "loss")
    assert steps == [0, 1, 2, 3, 4]
    assert values == pytest.approx(curve(run, "train_loss")[1])
    assert run.metrics["loss"] == pytest.approx(ip.user_ns["loss"].item())


def test_a_replay_records_the_same_curves(ip):
    assert run_cell(ip, "import numpy as np\nweights = np.linspace(0, 1, 20)").success
    code = (
        "%%track fit\n"
        "w = 0.0\n"
        "for epoch in range(6):\n"
        "    w = w + 0.5 * (weights.mean() - w)\n"
        "    loss = float((weights - w).std() + abs(weights.mean() - w))\n"
    )
    assert run_cell(ip, code).success
    parent = only_run()
    child = mlops.replay(parent.run_id)
    assert curve(child, "loss") == curve(parent, "loss")
    assert len(curve(child, "loss")[0]) == 6
    assert child.params == parent.params


def test_a_long_curve_is_sampled_for_the_card_with_its_exact_extremes(ip):
    code = (
        "%%track long\n"
        "import math\n"
        "for step in range(10_000):\n"
        "    loss = math.sin(step / 700) + (5.0 if step == 4321 else 0.0)\n"
        "    val_loss = -loss if step != 17 else float('nan')\n"
        "from jupyter_mlops.tracking.active import active_run\n"
        "recorder = active_run().steps\n"
        "loss = 2.0\n"  # assigned again after the loop: one more point
        "import jupyter_mlops as mlops\n"
        "for k in range(500):\n"  # steps with gaps: sampled by position instead
        "    mlops.log_metric('gappy', (k - 123) ** 2, step=2 * k)\n"
    )
    assert run_cell(ip, code).success
    run = only_run()
    assert len(run.metric_history("loss")) == 10_001
    sample, n = run.metric_curve("loss")
    assert n == 10_001 and len(sample) <= 160
    values = [math.sin(s / 700) + (5.0 if s == 4321 else 0.0) for s in range(10_000)] + [2.0]
    assert (4321.0, pytest.approx(5 + math.sin(4321 / 700))) in sample
    assert sample[0][0] == 0 and sample[-1] == (10_000.0, 2.0)
    assert (float(values.index(min(values))), min(values)) in sample
    # the card under the cell draws the recorder's copy: the same as the stored curves
    held = ip.user_ns["recorder"].curves()
    assert set(held) == {"loss", "val_loss"}
    for name in held:
        assert held[name][1] == run.metric_curve(name)[1]
        assert held[name][0] == run.metric_curve(name)[0]
    assert run.metric_curve("val_loss")[1] == 9_999  # the NaN is a gap
    gappy, n = run.metric_curve("gappy")
    assert n == 500 and len(gappy) <= 160 and (246.0, 0.0) in gappy
    assert gappy[0] == (0.0, 123.0**2) and gappy[-1] == (998.0, 376.0**2)
    card = run._repr_html_()
    assert "aria-label='loss over 10001 steps'" in card
    assert "aria-label='val_loss over 9999 steps'" in card
    assert f"<span class=mut>max</span> {max(values):.6g}" in card
    assert card == mlops.get_run(run.run_id)._repr_html_()


def test_functions_and_classes_defined_in_the_cell_keep_their_code(ip):
    code = (
        "%%track\n"
        "def step_loss(i):\n"
        "    for j in range(2):\n"
        "        loss = i + j\n"
        "    return loss\n"
        "class Trainer:\n"
        "    for k in range(2):\n"
        "        score = k * 1.0\n"
        "for epoch in range(3):\n"
        "    loss = step_loss(epoch)\n"
        "    def later(x):\n"
        "        error = x / 2\n"
        "        return error\n"
    )
    assert run_cell(ip, code).success
    ns = ip.user_ns
    plain = compile(
        "def step_loss(i):\n    for j in range(2):\n        loss = i + j\n    return loss\n",
        "<x>",
        "exec",
    )
    assert ns["step_loss"].__code__.co_code == plain.co_consts[0].co_code
    assert ns["step_loss"].__code__.co_consts == plain.co_consts[0].co_consts
    assert ns["Trainer"].score == 1.0 and ns["later"](3) == 1.5
    run = only_run()
    assert curve(run, "loss") == ([0, 1, 2], [1.0, 2.0, 3.0])
    assert "score" not in run.metrics and "error" not in run.metrics
