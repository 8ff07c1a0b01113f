"""Shared test setup: quiet TensorFlow before any test imports it."""

import os

import pytest

from bench import cli

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# The tests run in pytest-xdist workers: the step-time suite that `rnnbench run` starts in
# this process must not see the worker's variable, or pytest-benchmark disables itself.
os.environ.pop("PYTEST_XDIST_WORKER", None)


@pytest.fixture
def rnnbench(monkeypatch, capsys):
    """Run the real CLI entry point with only the report/compare/check commands registered."""
    mine = {"report", "compare", "check"}
    monkeypatch.setattr(cli, "COMMANDS", tuple(c for c in cli.COMMANDS if c[0] in mine))

    def run(*argv):
        code = cli.main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err
    return run


def _ab_case(case, verdict: str | None, blocks: int) -> dict:
    side = {"status": "ok", "reason": None, "code_version": "c0", "compile_s": 0.1,
            "kernel": None, "blocks": [[0.001, 0.0011] for _ in range(blocks)]}
    row = None if verdict is None else {
        "case": case.id, "verdict": verdict, "a_median": 0.001, "b_median": 0.0011,
        "ratio": 1.1, "ci_low": 1.05, "ci_high": 1.15, "ci_level": 0.9, "p": 0.01,
        "p_adj": 0.02, "mde": 0.05, "pairs": blocks, "pairs_needed": None, "note": ""}
    return {"id": case.id, "case": case.params(), "a": side,
            "b": {**side, "blocks": [[0.0011, 0.0012] for _ in range(blocks)]},
            "verdict": row}


@pytest.fixture(scope="session")
def ab_doc():
    """A valid current-version ab.json document: `ab_doc({impl: verdict, ...})`, one smoke
    forward case per implementation (case ids agree with their parameters)."""
    from bench.ab_results import KIND, SCHEMA_VERSION
    from bench.cases import preset

    def make(verdicts: dict[str, str | None], blocks: int = 4) -> dict:
        chosen = {}
        for case in preset("smoke"):
            if case.impl in verdicts and case.phase == "forward":
                chosen.setdefault(case.impl, case)
        cases = [_ab_case(chosen[impl], v, blocks) for impl, v in verdicts.items()]
        side = {"python": "/usr/bin/python3", "src": None, "env_vars": {}}
        return {"schema_version": SCHEMA_VERSION, "kind": KIND, "status": "complete",
                "error": None, "run_id": "ab-test", "created_utc": "2026-01-01T00:00:00Z",
                "command": "rnnbench ab", "preset": "smoke",
                "settings": {"blocks": blocks, "generations": 2, "rounds": 2, "warmup": 1,
                             "threshold": 0.1, "alpha": 0.05},
                "sides": {"A": dict(side), "B": dict(side)}, "differences": {},
                "passes_done": blocks, "pass_generation": [k % 2 for k in range(blocks)],
                "cases": cases, "process_sd": 0.01,
                "test": {"method": "bonferroni", "alpha": 0.05, "judged": len(cases)}}
    return make


# The headless-Chromium fixture (tests/browser.py), available to every test module.
from tests.browser import browser  # noqa: E402, F401
