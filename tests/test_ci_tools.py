"""The CI helpers in .ci/: the detection tree's injected slowdown and the regression confirmer."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

CI = Path(__file__).resolve().parents[1] / ".ci"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, CI / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ScriptedClock:
    """perf_counter that moves only when told to, plus `tick` per read (a busy loop's cost)."""

    def __init__(self, tick: float):
        self.now, self.tick, self.reads = 0.0, tick, 0

    def __call__(self) -> float:
        self.reads += 1
        self.now += self.tick
        return self.now


def _patched_build_step(impl: str, share: float, work, clock: ScriptedClock):
    slow_tree = _load("slow_tree")
    works = iter(work) if isinstance(work, list) else None

    def build_step(case, seed=0):
        def call():
            clock.now += next(works) if works else work  # the step's own work
            return "out"
        return SimpleNamespace(call=call)

    namespace = {"build_step": build_step}
    exec(slow_tree.PATCH.format(impl=impl, share=share), namespace)
    return namespace["build_step"]


@pytest.mark.parametrize("work", [0.001, 0.01, 0.3])
def test_slow_tree_spins_its_share_of_each_calls_own_time(monkeypatch, work):
    clock = ScriptedClock(tick=1e-6)
    monkeypatch.setattr(time, "perf_counter", clock)
    build = _patched_build_step("keras_lstm", 0.15, work, clock)
    step = build(SimpleNamespace(impl="keras_lstm"))
    before = clock.now
    assert step.call() == "out"
    took = clock.now - before
    assert took == pytest.approx(1.15 * work, rel=0.01)


def test_slow_tree_follows_the_machine_when_it_drifts(monkeypatch):
    clock = ScriptedClock(tick=1e-6)
    monkeypatch.setattr(time, "perf_counter", clock)
    works = [0.01] * 30 + [0.02] * 5  # the machine halves its speed after 30 calls
    step = _patched_build_step("keras_lstm", 0.15, works, clock)(SimpleNamespace(impl="keras_lstm"))
    took = []
    for _ in works:
        before = clock.now
        step.call()
        took.append(clock.now - before)
    assert took[0] == pytest.approx(0.0115, rel=0.01)
    assert took[-1] == pytest.approx(0.023, rel=0.01)


def test_slow_tree_leaves_other_implementations_alone(monkeypatch):
    clock = ScriptedClock(tick=1e-6)
    monkeypatch.setattr(time, "perf_counter", clock)
    build = _patched_build_step("keras_lstm", 0.15, 0.01, clock)
    step = build(SimpleNamespace(impl="gru"))
    before = clock.now
    step.call()
    assert clock.now - before == pytest.approx(0.01)
    assert clock.reads == 0


def test_slow_tree_copies_the_package_and_refuses_an_existing_folder(tmp_path):
    slow_tree = _load("slow_tree")
    dest = slow_tree.make_slow_tree(tmp_path / "slow", "gru", 0.1)
    phases = (dest / "bench" / "measure" / "phases.py").read_text()
    assert "injected by .ci/slow_tree.py: gru 10% slower per call" in phases
    compile(phases, "phases.py", "exec")
    with pytest.raises(SystemExit, match="already exists"):
        slow_tree.make_slow_tree(dest, "gru", 0.1)


def _ab_run(path: Path, make, verdicts: dict[str, str]) -> Path:
    path.mkdir()
    (path / "ab.json").write_text(json.dumps(make(verdicts)))
    return path


def test_regressed_impls_lists_each_regressed_implementation_once(tmp_path, ab_doc):
    regressed = _load("regressed_impls").regressed_impls
    run = _ab_run(tmp_path / "run", ab_doc, {"gru": "regression", "basic_rnn": "same",
                                            "keras_lstm": "regression"})
    assert regressed(run) == "gru,keras_lstm"


def test_regressed_impls_prints_nothing_when_a_case_broke(tmp_path, ab_doc):
    regressed = _load("regressed_impls").regressed_impls
    run = _ab_run(tmp_path / "run", ab_doc, {"gru": "regression", "basic_rnn": "broken"})
    assert regressed(run) == ""


def test_regressed_impls_refuses_a_corrupt_ab_json_with_one_line(tmp_path, ab_doc):
    run = _ab_run(tmp_path / "run", ab_doc, {"gru": "regression"})
    text = (run / "ab.json").read_text()
    (run / "ab.json").write_text(text[: len(text) // 2])
    proc = subprocess.run([sys.executable, str(CI / "regressed_impls.py"), str(run)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "malformed JSON" in proc.stderr
    assert "Traceback" not in proc.stderr
