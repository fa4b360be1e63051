"""Tasks of the simulator: objectives in either direction, the loss-only view, the reference rules, pooled tables."""
from __future__ import annotations

import json
import math
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import simulate as sim  # noqa: E402
from methods import baseline_factories  # noqa: E402
from reference_rules import ReferenceRules, reference_symptoms  # noqa: E402
from traces import Objective, parse_task  # noqa: E402


def line(index: int, losses, task=None, accs=None) -> str:
    epochs = []
    for step, loss in enumerate(losses):
        metrics = {"train_loss": loss, "val_loss": loss}
        if accs is not None:
            metrics["val_acc"] = accs[step]
        epochs.append({"payload": {"step": step, "metrics": metrics}, "seconds": 1.0})
    d = {"format": "bttackler.trace.v1", "trial": index, "config": {}, "status": "ok", "epochs": epochs, "max_epochs": len(losses)}
    if task is not None:
        d["task"] = task
    return json.dumps(d)


LOSS_TASK = {"name": "sunspots-gru", "objective": {"metric": "val_loss", "direction": "minimize"}, "hopeless_at": 1.0}


def test_a_minimized_task_scores_lower_losses_higher_and_calls_no_better_than_the_constant_predictor_hopeless():
    task = parse_task("\n".join(line(i, [1.2 - 0.1 * i * s for s in range(4)], LOSS_TASK) for i in range(4)) + "\n", "t")
    assert task.name == "sunspots-gru" and task.goal == Objective("val_loss", "minimize", 1.0)
    finals = [t.final for t in task.trials]
    assert finals == pytest.approx([1.2, 0.9, 0.6, 0.3])
    assert [t.hopeless for t in task.trials] == [True, False, False, False]
    assert sorted(task.trials, key=lambda t: t.final_score)[-1].index == 3
    assert sim.top_quartile_cut(task.trials) == pytest.approx(-0.6)


def test_lines_of_one_file_must_agree_on_the_task():
    with pytest.raises(ValueError, match="t:2: the task's objective differs"):
        parse_task(line(0, [1.0], LOSS_TASK) + "\n" + line(1, [1.0]) + "\n", "t")


def test_the_loss_only_view_drops_every_accuracy_and_minimizes_the_val_loss():
    task = parse_task("\n".join(line(i, [2.3, 1.0 + i], accs=[0.1, 0.5]) for i in range(2)) + "\n", "t")
    view = sim.loss_only(task)
    assert view.name == "traces (loss only)" and view.goal.metric == "val_loss" and not view.goal.maximize
    assert all("val_acc" not in p["metrics"] for t in view.trials for p in t.payloads)
    assert [t.final for t in view.trials] == [1.0, 2.0]
    assert "val_acc" in task.trials[0].payloads[0]["metrics"]  # the task itself is left as it was


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_threshold_pruner_baseline_prunes_a_trial_no_better_than_hopeless_after_4_epochs_in_the_tasks_direction(direction):
    goal = Objective("m", direction, 0.2 if direction == "maximize" else 2.0)
    bad, good = (0.1, 0.8) if direction == "maximize" else (2.5, 0.5)
    task = parse_task("\n".join(line(i, [1.0] * 8) for i in range(2)) + "\n", "t")
    from dataclasses import replace

    trials = [replace(t, objective=[v] * 8, goal=goal) for t, v in zip(task.trials, (bad, good))]
    method = baseline_factories(1, 8, goal)["optuna-threshold"]()
    for t in trials:
        method.start(t)
    assert [method.stop(trials[0], e) for e in range(6)] == [False] * 4 + [True, True]
    assert [method.stop(trials[1], e) for e in range(6)] == [False] * 6
    assert "nni-curvefitting" in baseline_factories(1, 8, Objective()) and ("nni-curvefitting" in baseline_factories(1, 8, goal)) == (direction == "maximize")


def test_reference_rules_stop_on_their_published_conditions_and_protection_shields_the_soft_ones():
    layers = lambda g, z=0.1: [{"grad_abs_mean": x, "grad_zero_frac": z} for x in g]  # noqa: E731
    assert reference_symptoms({"layers": layers([1e-3, 1e-3]), "metrics": {"train_loss": math.nan}}, 0, 20, [], []) == ["EG"]
    assert reference_symptoms({"layers": layers([1e5, 1e5, 1e5])}, 0, 20, [1.0], []) == ["EG"]
    assert reference_symptoms({"layers": layers([1e-3, 0.0])}, 0, 20, [1.0], []) == ["EG", "VG*"]  # q = inf, a zero g
    assert reference_symptoms({"layers": layers([1e-3, 1e-3], z=0.7)}, 4, 20, [2.0, 1.5, 1.0, 0.8, 0.7], []) == ["DR*"]
    assert reference_symptoms({"layers": layers([1e-3, 1e-3])}, 2, 20, [2.3, 2.3, 2.3], []) == ["SC*"]
    # a late rise of the val loss: its second half varies more (SC late) and its last 3 average above the 3 before (NMG)
    assert reference_symptoms({"layers": layers([1e-3, 1e-3])}, 12, 20, [1.0] * 6, [1.0, 1.0, 1.0, 1.0, 1.0, 1.2]) == ["SC*", "NMG*"]
    rules = ReferenceRules()
    task = parse_task("\n".join(line(i, [0.5] * 20) for i in range(12)) + "\n", "t")
    flat = [t for t in task.trials]
    for t in flat:
        rules.start(t)
    # 10 trials at train loss 0.5 stop on SC at epoch 2; the 11th is then at the 10th percentile of 10: protected from SC
    for t in flat[:10]:
        assert [rules.stop(t, e) for e in range(3)] == [False, False, True]
    assert [rules.stop(flat[10], e) for e in range(3)] == [False, False, False]


def test_pooled_table_sums_counts_over_tasks_and_averages_the_ceiling_shares():
    a = sim.MethodSummary("bttackler", [40.0], 0, [40.0], [0.7], [10], [20], [5], [0], 1, 50, 9, 10, 0.1)
    b = sim.MethodSummary("bttackler", [20.0], 1, [20.0, None], [0.5, 0.5], [10, 10], [20, 20], [5, 5], [0, 1], 0, 40, 10, 10, 0.2)
    a.ceiling_share, b.ceiling_share = [0.8], [0.4]
    (p,) = sim.pool([[a], [b]])
    assert p.tsba == [40.0, 20.0] and p.tsba_missed == 1 and p.top_quartile_stopped == 1 and p.top_quartile_started == 90
    assert p.ceiling_share == [0.8, 0.4] and not p.safe  # a top-10 trial stopped in b
    assert a.safe and a.tsba == [40.0]  # the inputs are not changed
    row = sim.table([p]).splitlines()[2]
    assert "| bttackler | 30.0 ± " in row and "| 60 |" in row and "| 1/3 |" in row and "| 1 in 3 runs (" in row and row.endswith("| no |")
    # a method that ran on one of the two tasks (Curvefitting on a maximized one) is counted over its own runs
    c = sim.MethodSummary("nni-curvefitting", [10.0], 0, [10.0], [0.6], [10], [20], [5], [2], 3, 50, 9, 10, 0.1)
    _, q = sim.pool([[a, c], [b]])
    assert "| 0/1 |" in sim.table([q]) and "| 2 in 1 runs (" in sim.table([q])


def test_tpe_proposes_every_recorded_configuration_once_learns_from_the_outcomes_and_is_seeded():
    from samplers import RandomOrder, TPEOrder

    text = "\n".join(
        json.dumps(
            {
                "format": "bttackler.trace.v1",
                "trial": i,
                "config": {"lr": 10 ** (-4 + 3 * i / 29), "opt": ["sgd", "adam"][i % 2], "wd": 0 if i % 3 == 0 else 1e-4 * (i + 1)},
                "status": "ok",
                "epochs": [{"payload": {"step": s, "metrics": {"val_acc": 0.1 + 0.02 * i * s}}, "seconds": 1.0} for s in range(4)],
            }
        )
        for i in range(30)
    )
    trials = parse_task(text + "\n", "t").trials

    def run(seed):
        order = TPEOrder(trials, seed)
        picked = []
        while (p := order.next()) is not None:
            picked.append(p)
            order.done(p, 4 if p % 4 else 2)  # every 4th stopped after 2 epochs
        return order, picked

    order, picked = run(3)
    assert sorted(picked) == list(range(30))
    states = [t.state.name for t in order._study.trials if t.state.name != "FAIL"]
    assert states.count("COMPLETE") == 22 and states.count("PRUNED") == 8
    assert run(3)[1] == picked and run(4)[1] != picked
    # after its 10 random start-up proposals TPE favours the high-lr end, where val_acc grows fastest:
    # proposals 11-20 average well above the 14.5 of a random order (seeds 1-5: 17.1, 22.4, 19.1, 16.6, 16.0)
    assert sum(sum(run(seed)[1][10:20]) / 10 for seed in range(1, 6)) / 5 > 16
    r = RandomOrder(trials, 3)
    assert sorted(iter(r.next, None)) == list(range(30))
