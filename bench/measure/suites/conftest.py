"""Options, case parametrization and the per-case measurement of the step-time suites.

`pytest bench/measure/suites --preset cpu --impl keras_lstm` and `rnnbench run --preset cpu --impl
keras_lstm` run the same tests; `--rnnbench-out DIR` makes plain pytest write a run folder too.
"""

from __future__ import annotations

import pytest

from bench.analysis.summary import busy_machine_warning, summary_table
from bench.errors import UserError, one_line
from bench.measure import calibration, kernel, memory, phases, timing
from bench.measure.run.collector import Collector, find_collector, make_row
from bench.measure.options import add_suite_options, selection_kwargs
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
                             max_time=opt("max_time"), warmup=opt("warmup"))


def timed_rounds(step, benchmark, policy: timing.RoundsPolicy) -> tuple[float, list[float]]:
    """First call timed as compile_s, rounds planned from a second call, then pedantic rounds.

    Returns (compile_s, raw per-round seconds); samples are empty under --benchmark-disable.
    """
    compile_s, _ = timing.time_call(step.call)
    estimate, _ = timing.time_call(step.call)
    rounds = policy.plan(estimate)
    warmup = max(policy.warmup - 1, 0)
    timed = timing.Recorder(step.call)
    benchmark.pedantic(timed, rounds=rounds, warmup_rounds=warmup, iterations=1)
    if getattr(benchmark, "disabled", False):
        return compile_s, []
    return compile_s, timed.samples[warmup:warmup + rounds]


@pytest.fixture
def rnnbench_collector(request) -> Collector:
    """The session's Collector (the one `rnnbench run` passed, or the conftest's own)."""
    return find_collector(request.config)


@pytest.fixture
def measure_case(request, rnnbench_collector):
    """Measure one case with `benchmark` and record its ok / skipped / error row."""
    from bench.impls.devices import case_skip_reason

    policy = _policy(request.config)
    collector = rnnbench_collector

    def run(case, benchmark):
        reason = case_skip_reason(case)
        if reason is not None:
            collector.record(make_row(case, "skipped", reason=reason,
                                             stats={"flops": case.flops()}))
            pytest.skip(reason)
        version = phases.code_version(case)
        benchmark.extra_info.update(case=case.params(), code_version=version)
        compile_s, found = None, {}
        try:
            if not request.config.getoption("no_equivalence"):
                assert_equivalent(case, request.config.stash[_EQUIVALENCE])
            probe = memory.start_probe(case.device)  # build, trace and timed calls
            step = phases.build_step(case)
            compile_s, samples = timed_rounds(step, benchmark, policy)
            found = probe.stop().row_fields()
            found["kernel"] = kernel.step_kernel(step)  # after the probe: not the case's memory
            kernel.check_promise(case.impl, found["kernel"])
        except Exception as exc:
            collector.record(make_row(
                case, "error", reason=one_line(exc), code_version=version,
                stats={"compile_s": compile_s, "flops": case.flops()}, **found))
            raise
        if not samples:  # --benchmark-disable: the case ran once as a plain test
            return
        stats = timing.summarize(samples)
        calib = collector.doc["calibration"] if collector.doc else {}
        stats.update(compile_s=compile_s, **calibration.roofline(case, stats["median_s"], calib),
                     warnings=timing.stability_warnings(samples, resolution=collector.resolution,
                                                        min_rounds=policy.min_rounds))
        benchmark.extra_info.update({k: stats[k] for k in ("compile_s", "gflops", "pct_peak")},
                                    **found)
        collector.record(make_row(case, "ok", stats=stats, code_version=version, **found))

    return run


_OVERHEAD = pytest.StashKey[list]()
_EQUIVALENCE = pytest.StashKey[dict]()


class NotEquivalentError(AssertionError):
    """An implementation disagrees with the reference: its timings would mean nothing."""


def assert_equivalent(case, cache: dict) -> None:
    """Equivalence before timing (STYLE §3); raises NotEquivalentError, which makes the case an
    error row instead of a timing."""
    from bench.impls.equivalence import equivalence_problem

    problem = equivalence_problem(case, cache)
    if problem is not None:
        raise NotEquivalentError(problem)


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
    rows = collector.doc["cases"] if collector is not None and collector.doc else []
    if rows and not collector.progress:
        terminalreporter.section("rnnbench step time")
        terminalreporter.write_line(summary_table(rows))
        busy = busy_machine_warning(collector.doc["env"])
        if busy:
            terminalreporter.write_line(busy)
