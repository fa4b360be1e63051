"""BTTacklerStopper and stopped_trials against the real service, called as Ray's driver calls them (no cluster here:
the end-to-end runs on a real local Ray cluster are in test/e2e/ray and test/faults/test_ray_faults.py)."""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

tune = pytest.importorskip("ray.tune")

from bttackler import BTTacklerClient  # noqa: E402
from bttackler.ray import PAYLOAD_KEY, STOP_KEY, BTTacklerStopper, StoppedTrial, stopped_trials  # noqa: E402
from helpers import SlowService, closed_port, timed, warnings_of  # noqa: E402

MARGIN = 0.5
HEALTHY_LAYERS = [{"name": "dense1", "grad_abs_mean": 1e-3}, {"name": "dense2", "grad_abs_mean": 1.2e-3}]
EXPLODING_LAYERS = [{"name": "dense1", "grad_abs_mean": 5.0}, {"name": "dense2", "grad_abs_mean": 1e-3}, {"name": "dense3", "grad_abs_mean": 1e-6}]


def result_of(step: int, loss: float, layers: List[Dict[str, Any]] = HEALTHY_LAYERS, **extra: Any) -> Dict[str, Any]:
    """A result as Ray hands it to a stopper: the user's metrics plus Ray's own keys."""
    payload = {"step": step, "max_steps": 10, "metrics": {"train_loss": loss}, "layers": layers}
    return {"loss": loss, PAYLOAD_KEY: payload, "training_iteration": step + 1, "done": False, **extra}


@pytest.fixture
def stopper(service: Any, name: Callable[[str], str]) -> Any:
    s = BTTacklerStopper(url=service.url(), study=name("ray"))
    yield s
    s.close()


def ended(service: Any, study: str) -> Dict[str, Any]:
    client = BTTacklerClient(service.url(), timeout=5)
    try:
        return {t["trial"]: t.get("ended") for t in client.study_trials(study)["trials"]}
    finally:
        client.close()


def test_an_exploding_trial_is_stopped_with_its_reason_in_the_result_and_the_service(stopper: Any, service: Any) -> None:
    stopped = result_of(0, 2.0, EXPLODING_LAYERS)
    assert stopper("t_00000", stopped) is True
    record = stopped[STOP_KEY]
    assert record["by"] == "bttackler" and record["symptoms"] == ["EG"] and record["step"] == 0, record
    assert record["reason"].startswith("EG ") and "\n" not in record["reason"]
    assert stopper.stops == {"t_00000": record}
    # the service holds the verdict and marks the trial pruned
    assert ended(service, stopper.study) == {"t_00000": "pruned"}
    # Ray may hand the trial's last result again (done): still "stop", nothing new sent
    assert stopper("t_00000", dict(stopped, done=True)) is True


def test_a_nan_loss_stops_at_its_step(stopper: Any) -> None:
    assert stopper("t_1", result_of(0, 1.0)) is False
    result = result_of(1, float("nan"))
    assert stopper("t_1", result) is True
    assert result[STOP_KEY]["step"] == 1 and result[STOP_KEY]["symptoms"] == ["NF"]


def test_a_healthy_trial_continues_and_is_marked_complete_on_its_done_result(stopper: Any, service: Any) -> None:
    loss = 2.0
    for step in range(6):
        loss *= 0.8
        assert stopper("t_ok", result_of(step, loss)) is False
    assert ended(service, stopper.study) == {"t_ok": None}
    assert stopper("t_ok", result_of(5, loss, done=True)) is False  # Ray's final copy of the last result
    assert ended(service, stopper.study) == {"t_ok": "complete"}
    assert stopper.stops == {} and stopper.stop_all() is False


def test_the_payload_leaves_the_result_once_read_unless_kept(service: Any, name: Callable[[str], str]) -> None:
    read = BTTacklerStopper(url=service.url(), study=name("ray-pop"))
    kept = BTTacklerStopper(url=service.url(), study=name("ray-keep"), keep_payload=True)
    try:
        first, second = result_of(0, 1.0), result_of(0, 1.0)
        assert read("t", first) is False and kept("t", second) is False
        assert PAYLOAD_KEY not in first and first["loss"] == 1.0  # Ray's loggers get the metrics without it
        assert second[PAYLOAD_KEY]["step"] == 0
        # Ray's final copy of that last result (payload gone, done): the trial ends "complete", without a warning
        assert read("t", dict(first, done=True)) is False
        assert ended(service, read.study) == {"t": "complete"}
    finally:
        read.close()
        kept.close()


def test_the_step_defaults_to_the_training_iteration(stopper: Any) -> None:
    client = BTTacklerClient(stopper.url, timeout=5)
    for iteration in (1, 2):
        stopper("t_it", {PAYLOAD_KEY: {"metrics": {"train_loss": 1.0 / iteration}}, "training_iteration": iteration})
    assert [v["step"] for v in client.history(stopper.study, "t_it")["verdicts"]] == [0, 1]
    client.close()


@pytest.mark.parametrize("result, words", [
    ({"loss": 1.0, "training_iteration": 1}, "has no 'bttackler' key"),
    ({PAYLOAD_KEY: [1, 2], "training_iteration": 1}, "must be a mapping"),
    (None, "has no 'bttackler' key"),
])
def test_a_result_without_a_usable_payload_continues_with_one_warning(stopper: Any, result: Any, words: str, caplog: pytest.LogCaptureFixture) -> None:
    assert stopper("t_x", result) is False
    assert stopper("t_x", result) is False
    found = [w for w in warnings_of(caplog) if words in w]
    assert len(found) == 1, warnings_of(caplog)


def test_a_payload_the_service_refuses_continues(stopper: Any, caplog: pytest.LogCaptureFixture) -> None:
    assert stopper("t_bad", {PAYLOAD_KEY: {"step": -3}}) is False
    assert any("failed: error" in w for w in warnings_of(caplog)), warnings_of(caplog)


def test_the_config_opens_the_study_before_the_first_report(service: Any, name: Callable[[str], str]) -> None:
    stopper = BTTacklerStopper(url=service.url(), config={"max_steps": 7}, study=name("ray-config"))
    try:
        assert stopper("t", result_of(0, 1.0)) is False
        client = BTTacklerClient(service.url(), timeout=5)
        opened = client.open_study(stopper.study)
        client.close()
        assert opened["created"] is False and opened["config"]["max_steps"] == 7
    finally:
        stopper.close()


def test_a_pickled_stopper_holds_no_socket_and_talks_to_the_same_service_study(stopper: Any) -> None:
    stopper("t_p", result_of(0, 1.0))  # the original has an open connection now
    state = stopper.__getstate__()
    assert set(state) == {"url", "config", "timeout", "study", "keep_payload"}
    copy = pickle.loads(pickle.dumps(stopper))
    assert copy.client is not None and copy.client._ws is None  # a fresh client, not connected yet
    assert copy.study == stopper.study and copy.url == stopper.url
    result = result_of(1, float("nan"))
    assert copy("t_p", result) is True
    assert result[STOP_KEY]["symptoms"] == ["NF"]
    copy.close()


def test_an_unreachable_service_answers_continue_at_once_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    stopper = BTTacklerStopper(url=f"ws://127.0.0.1:{closed_port()}", timeout=1.0)
    answers, took = timed(lambda: [stopper(f"t{i}", result_of(0, float("nan"))) for i in range(5)], 1.0 + MARGIN)
    assert answers == [False] * 5 and took <= 1.0 + MARGIN
    assert any("fail open" in w for w in warnings_of(caplog)), warnings_of(caplog)
    stopper.close()


def test_a_silent_service_costs_each_call_at_most_the_timeout(silent_server: Any) -> None:
    stopper = BTTacklerStopper(url=f"ws://127.0.0.1:{silent_server.port}", timeout=0.5, config={"max_steps": 5})
    answer, took = timed(lambda: stopper("t", result_of(0, float("nan"))), 0.5 + MARGIN)
    assert answer is False and took <= 0.5 + MARGIN
    stopper.close()


def test_opening_the_study_and_reporting_share_one_timeout() -> None:
    slow = SlowService(delay=0.4)  # each call on its own would fit in the timeout, both together do not
    try:
        stopper = BTTacklerStopper(url=slow.url, timeout=0.6, config={"max_steps": 5})
        answer, took = timed(lambda: stopper("t", result_of(0, 1.0)), 0.6 + MARGIN)
        assert answer is False and took <= 0.6 + MARGIN
        assert slow.requests[0] == "study.open"
        stopper.close()
    finally:
        slow.close()


def test_without_a_url_the_stopper_runs_its_own_service_and_stops_it_on_close() -> None:
    stopper = BTTacklerStopper(timeout=10.0)
    try:
        result = result_of(0, float("nan"))
        assert stopper("t", result) is True  # the first call waits (within its budget) for the service to listen
        assert stopper.url is not None and stopper.url.startswith("ws://127.0.0.1:")
        copy = pickle.loads(pickle.dumps(stopper))
        assert copy.url == stopper.url and copy("t2", result_of(0, float("nan"))) is True
        copy.close()
        service = stopper._service
    finally:
        stopper.close()
    assert service.process is None and stopper.url is None


@pytest.mark.parametrize("kwargs, error, words", [
    ({"url": "http://x"}, ValueError, "ws://"),
    ({"url": "ws://127.0.0.1:1", "timeout": 0}, ValueError, "timeout"),
    ({"url": "ws://127.0.0.1:1", "timeout": "1"}, TypeError, "timeout"),
    ({"url": "ws://127.0.0.1:1", "config": [1]}, TypeError, "config must be a mapping"),
    ({"url": "ws://127.0.0.1:1", "config": {"x": float("nan")}}, ValueError, "plain JSON"),
    ({"url": "ws://127.0.0.1:1", "study": ""}, ValueError, "study"),
    ({"url": "ws://127.0.0.1:1", "study": "a\nb"}, ValueError, "study"),
    ({"url": "ws://127.0.0.1:1", "keep_payload": 1}, TypeError, "keep_payload"),
])
def test_bad_arguments_are_refused_naming_the_value(kwargs: Dict[str, Any], error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        BTTacklerStopper(**kwargs)


def test_it_composes_with_ray_stoppers(stopper: Any) -> None:
    combined = tune.stopper.CombinedStopper(stopper, tune.stopper.MaximumIterationStopper(100))
    assert combined("t_c", result_of(0, 1.0)) is False
    assert combined("t_c", result_of(1, float("nan"))) is True


class FakeTrial:
    """What the callback reads of a ray.tune.experiment.Trial."""

    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id


def test_the_callback_ends_each_trial_by_how_it_ended(stopper: Any, service: Any) -> None:
    callback = stopper.callback()
    assert callback.stopper is stopper
    for step in range(6):
        stopper("t_full", result_of(step, 1.0 / (step + 1)))  # max_steps 10 announced: runs all 10
    for step in range(4, 10):
        stopper("t_full", result_of(step, 0.1))
    for step in range(3):
        stopper("t_cut", result_of(step, 1.0 / (step + 1)))  # a scheduler cuts it at step 2 of 10
    stopper("t_err", result_of(0, 1.0))
    stopper("t_stop", result_of(0, float("nan")))
    callback.on_trial_complete(iteration=1, trials=[], trial=FakeTrial("t_full"))
    callback.on_trial_complete(iteration=1, trials=[], trial=FakeTrial("t_cut"))
    callback.on_trial_error(iteration=1, trials=[], trial=FakeTrial("t_err"))
    callback.on_trial_complete(iteration=1, trials=[], trial=FakeTrial("t_stop"))
    callback.on_trial_complete(iteration=1, trials=[], trial=FakeTrial("t_never_reported"))  # nothing to end
    assert ended(service, stopper.study) == {"t_full": "complete", "t_cut": "pruned", "t_err": "failed", "t_stop": "pruned"}
    with pytest.raises(TypeError, match="BTTacklerStopper"):
        type(callback)(object())


# ---------------------------------------------------------------------- stopped_trials


class FakeResult:
    """What stopped_trials reads of a ray.tune.Result: metrics (the last result), config, path."""

    def __init__(self, metrics: Dict[str, Any], config: Dict[str, Any], path: str) -> None:
        self.metrics, self.config, self.path = metrics, config, path


def test_stopped_trials_from_results_lists_only_the_stopped_ones_in_trial_order() -> None:
    record = {"by": "bttackler", "step": 2, "symptoms": ["NF"], "reason": "NF non_finite_metric: metric train_loss is not finite"}
    grid = [
        FakeResult({"trial_id": "b_1", STOP_KEY: record}, {"lr": 5.0}, "/r/b"),
        FakeResult({"trial_id": "a_0", "loss": 0.1}, {"lr": 0.1}, "/r/a"),
        FakeResult({"trial_id": "a_2", STOP_KEY: dict(record, step=0)}, {"lr": 9.0}, "/r/c"),
    ]
    found = stopped_trials(grid)
    assert [(t.trial_id, t.step, t.symptoms, t.config["lr"], t.path) for t in found] == [("a_2", 0, ["NF"], 9.0, "/r/c"), ("b_1", 2, ["NF"], 5.0, "/r/b")]
    assert str(found[1]) == "b_1 stopped at step 2 [NF]: NF non_finite_metric: metric train_loss is not finite"


def test_stopped_trials_from_an_experiment_folder(tmp_path: Path) -> None:
    record = {"by": "bttackler", "step": 1, "symptoms": ["EG"], "reason": "EG grad_ratio_high: ..."}
    stopped_dir, healthy_dir = tmp_path / "train_abc_00000", tmp_path / "train_abc_00001"
    for folder, lines in ((stopped_dir, [{"trial_id": "abc_00000", "loss": 1}, {"trial_id": "abc_00000", STOP_KEY: record}]),
                          (healthy_dir, [{"trial_id": "abc_00001", "loss": 1}])):
        folder.mkdir()
        (folder / "result.json").write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"cut by a cra')
        (folder / "params.json").write_text(json.dumps({"lr": 1.0}))
    assert stopped_trials(tmp_path) == [StoppedTrial("abc_00000", 1, ["EG"], "EG grad_ratio_high: ...", {"lr": 1.0}, str(stopped_dir))]
    assert stopped_trials(str(tmp_path)) == stopped_trials(tmp_path)


def test_stopped_trials_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="experiment folder not found"):
        stopped_trials(tmp_path / "nope")
    with pytest.raises(TypeError, match="ResultGrid or the path"):
        stopped_trials(42)
