"""Options, case parametrization and the measuring fixture (over bench.measure.case_run).

`pytest bench/measure/suites --preset cpu --impl keras_lstm` and `rnnbench run --preset cpu --impl
keras_lstm` run the same tests; `--rnnbench-out DIR` makes plain pytest write a run folder too.
"""

from __future__ import annotations

import pytest

from bench.analysis.summary import busy_machine_warning, summary_table
from bench.errors import UserError
from bench.measure import timing
from bench.measure.case_run import CaseRun
from bench.measure.options import add_suite_options, selection_kwargs
from bench.measure.run.collector import Collector, find_collector
from bench.measure.selection import selected_cases


def pytest_addoption(parser):
    """The rnnbench case-selection and rounds options (the table in bench/measure/options.py)."""
    add_suite_options(parser)


def _selection(config):
    return selected_cases(config.getoption("preset"), **selection_kwargs(config.getoption))


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    """Validate the selection, set threads, and register a Collector unless `run` passed one."""
    from bench.impls.tfsetup import import_tensorflow
    from bench.results import new_run_id
    from bench.storage import make_run_dir

    try:
        _selection(config)
        import_tensorflow(verbose=(config.getoption("verbose", default=0) or 0) > 0)
        threads = config.getoption("threads")
        if threads is not None:
            from bench.measure.env import apply_threads

            apply_threads(threads)
        if find_collector(config) is None:
            preset = config.getoption("preset")
            run_id = new_run_id(preset)
            out = config.getoption("rnnbench_out")
            run_dir = make_run_dir(out, run_id) if out else None
            command = "pytest " + " ".join(config.invocation_params.args)
            config.pluginmanager.register(Collector(
                run_dir, run_id=run_id, command=command, preset=preset, threads=threads,
                progress=False), "rnnbench-collector")
    except UserError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_OVERHEAD] = []
    config.stash[_EQUIVALENCE] = {}


def pytest_generate_tests(metafunc):
    """Parametrize `case` with the selected cases; the test id is `Case.id`."""
    if "case" in metafunc.fixturenames:
        chosen = _selection(metafunc.config)
        metafunc.parametrize("case", chosen, ids=[c.id for c in chosen])


def _policy(config) -> timing.RoundsPolicy:
    opt = config.getoption
    return timing.policy_for(opt("preset"), rounds=opt("rounds"), min_rounds=opt("min_rounds"),
                             max_time=opt("max_time"), warmup=opt("warmup"),
                             warmup_time=opt("warmup_time"))


def timed_rounds(run: CaseRun, benchmark, policy: timing.RoundsPolicy) -> list[float]:
    """pytest-benchmark's pedantic rounds, planned and warmed up by CaseRun.plan_rounds.

    Returns the raw per-round seconds; empty under --benchmark-disable (one plain call).
    """
    if getattr(benchmark, "disabled", False):
        benchmark.pedantic(run.step.call, rounds=1, iterations=1)
        return []
    rounds = run.plan_rounds(policy)
    timed = timing.Recorder(run.step.call, run.timer)
    benchmark.pedantic(timed, rounds=rounds, iterations=1)
    return timed.samples[:rounds]  # --benchmark-cprofile calls it once more, profiled


@pytest.fixture
def rnnbench_collector(request) -> Collector:
    """The session's Collector (the one `rnnbench run` passed, or the conftest's own)."""
    return find_collector(request.config)


@pytest.fixture
def measure_case(request, rnnbench_collector):
    """Measure one case (bench.measure.case_run) with `benchmark` timing its rounds."""
    policy = _policy(request.config)
    collector = rnnbench_collector
    no_equivalence = request.config.getoption("no_equivalence")

    def run(case, benchmark):
        measured = CaseRun(case, equivalence=None if no_equivalence
                           else request.config.stash[_EQUIVALENCE])
        try:
            if not measured.check():
                collector.record(measured.row())
                pytest.skip(measured.reason)
            benchmark.extra_info.update(case=case.params(), code_version=measured.code_version)
            measured.build()
            samples = timed_rounds(measured, benchmark, policy)
            measured.settle()
        except Exception as exc:
            measured.fail(exc)
            collector.record(measured.row())
            raise
        if not samples:  # --benchmark-disable: the case ran once as a plain test
            return
        row = measured.row(samples, calibration_doc=collector.doc["calibration"]
                           if collector.doc else {}, resolution=collector.resolution,
                           min_rounds=policy.min_rounds)
        benchmark.extra_info.update(compile_s=row.stats.compile_s, gflops=row.stats.gflops,
                                    pct_peak=row.stats.pct_peak, kernel=row.kernel,
                                    **measured.memory)
        collector.record(row)

    return run


_OVERHEAD = pytest.StashKey[list]()
_EQUIVALENCE = pytest.StashKey[dict]()


@pytest.fixture
def overhead_log(request) -> list:
    """Lines the harness-overhead benchmark prints in the terminal summary."""
    return request.config.stash[_OVERHEAD]


def pytest_terminal_summary(terminalreporter, config):
    """Print the harness-overhead result and, without `rnnbench run`, the summary table."""
    lines = config.stash.get(_OVERHEAD, [])
    if lines:
        terminalreporter.section("rnnbench harness overhead")
        for line in lines:
            terminalreporter.write_line(line)
    collector = find_collector(config)
    rows = collector.rows if collector is not None and collector.doc else []
    if rows and not collector.progress:
        terminalreporter.section("rnnbench step time")
        terminalreporter.write_line(summary_table(rows))
        busy = busy_machine_warning(collector.doc["env"])
        if busy:
            terminalreporter.write_line(busy)
