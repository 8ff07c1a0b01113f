"""Time-to-accuracy under pytest-benchmark: the tiny preset, one round per implementation.

Not part of the unit tests (bench/measure/suites is outside testpaths). Run it with
`pytest bench/measure/suites/test_tta.py` (add `--impl NAME` to pick implementations); the benchmark
time is the whole run (build, compile, training, evaluations), and `extra_info` holds the
time-to-target with evaluation excluded, as `rnnbench tta` reports it.
"""

from __future__ import annotations

import dataclasses

import pytest

from bench.tta import command as tta
from bench.tta import mnist as data
from bench.tta import settings, train


def _wanted(config) -> set[str] | None:
    chosen = config.getoption("impl", default=None)
    return {n for item in chosen for n in item.split(",") if n} if chosen else None


def pytest_generate_tests(metafunc):
    """Parametrize `tta_pair` with (impl, unroll, skip reason); --impl narrows the list."""
    if "tta_pair" in metafunc.fixturenames:
        wanted = _wanted(metafunc.config)
        pairs = [p for p in tta._pairs(["all"], [settings.AUTO], "cpu")
                 if wanted is None or p[0] in wanted]
        metafunc.parametrize("tta_pair", pairs, ids=[f"{i}/{u}" for i, u, _ in pairs])


@pytest.fixture(scope="module")
def row_data() -> data.TaskData:
    return data.task_data(data.load_subset(), "row")


@pytest.mark.tf
@pytest.mark.slow
def test_tta_tiny(benchmark, row_data, tta_pair):
    impl, unroll, skip = tta_pair
    if skip is not None:
        pytest.skip(skip)
    chosen = dataclasses.replace(settings.TINY_PRESET, impl=impl, unroll=unroll)
    row = benchmark.pedantic(train.run_tta, args=(chosen, row_data), rounds=1, iterations=1,
                             warmup_rounds=0)
    stats = row.stats
    benchmark.extra_info.update(
        id=row.id, reached=stats.reached, time_to_target_s=stats.time_to_target_s,
        best_acc=stats.best_acc, steps=stats.steps, epochs=stats.epochs,
        compile_s=stats.compile_s, eval_s=stats.eval_s, target=chosen.target)
    assert row.status == "ok"
    assert not stats.diverged, row.reason
    assert stats.best_acc > 0.3  # learned something (chance 0.1), even if the target was missed
