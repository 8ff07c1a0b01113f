"""Property: any mutation of a valid results file makes report, compare and check exit 0 or 2,
with no traceback and no warning (pytest turns warnings into errors)."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import cli

FIXTURES = Path(__file__).parent / "fixtures"


def _small_run() -> dict:
    """run_a cut down to a few ok cases of one table, a skipped and an error row, one TTA run."""
    doc = json.loads((FIXTURES / "run_a" / "results.json").read_text())
    ok = [r for r in doc["cases"] if r["status"] == "ok" and r["case"]["phase"] == "forward"]
    rest = [next(r for r in doc["cases"] if r["status"] == s) for s in ("skipped", "error")]
    doc["cases"] = ok[:4] + rest
    doc["tta"] = doc["tta"][:1]
    doc.update(status="complete", cases_planned=6, cases_finished=6)
    return doc


BASE = _small_run()

GARBAGE = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10 ** 30), max_value=10 ** 30),
    st.sampled_from([0, -1, 0.0, -0.0, 1e-320, 1e308, 10 ** 400, float("nan"), float("inf"),
                     -float("inf"), 2.5]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.lists(st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.one_of(st.none(), st.integers(), st.text(max_size=3)),
                    max_size=3),
)


def _paths(node, prefix=()):
    """Every path to a value in a JSON tree (dict keys and list indices)."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:6]):
            yield from _paths(value, (*prefix, i))


PATHS = [p for p in _paths(BASE) if p]


DEEP = "@@deeply-nested@@"  # stands for 100,000 nested lists (json.dumps cannot write them)


def to_text(doc: dict) -> str:
    """The document's JSON, with the DEEP marker replaced by deep nesting."""
    return json.dumps(doc).replace(f'"{DEEP}"', "[" * 100_000 + "]" * 100_000)


# Hostile edits a careless or malicious writer could make (issue 17): deep nesting, a duplicate
# row, an id that disagrees with its parameters, counts that disagree, huge or non-finite
# numbers where a number must be finite.
HOSTILE = {
    "deep": lambda doc, n: doc.update(command=DEEP),
    "duplicate-row": lambda doc, n: doc["cases"].append(copy.deepcopy(doc["cases"][n % 4])),
    "params-disagree": lambda doc, n: doc["cases"][n % 4]["case"].update(batch=1000 + n),
    "finished-above-planned": lambda doc, n: doc.update(cases_finished=doc["cases_planned"]
                                                        + 1 + n),
    "finished-disagrees": lambda doc, n: doc.update(cases_finished=n % 6),
    "huge-number": lambda doc, n: doc["cases"][n % 4]["stats"].update(median_s=10 ** (300 + n)),
    # a v1 file's rounds get their interval on upgrade: an integer no float can hold there
    "huge-sample": lambda doc, n: doc["cases"][n % 4]["stats"]["samples_s"].__setitem__(
        0, 10 ** (400 + n)),
    "nan-in-calibration": lambda doc, n: doc["calibration"].update(
        samples_s=[float("nan")] * (1 + n % 3)),
    "inf-in-calibration": lambda doc, n: doc["calibration"].update(clock_resolution_s=float(
        "inf")),
}


@st.composite
def mutated(draw) -> str:
    """A results.json text after 1-3 mutations: delete, replace by garbage, a hostile edit
    (HOSTILE), or truncate."""
    doc = copy.deepcopy(BASE)
    if draw(st.integers(0, 2)) == 0:
        HOSTILE[draw(st.sampled_from(sorted(HOSTILE)))](doc, draw(st.integers(0, 20)))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(PATHS))
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]]  # does the path still exist after earlier mutations?
        except (KeyError, IndexError, TypeError):
            continue
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(GARBAGE)
    text = to_text(doc)
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text) - 1))]
    return text


def _run(argv: list) -> tuple[int, str]:
    err = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = cli.main([str(a) for a in argv])
    return code, err.getvalue()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=mutated(), figures=st.integers(0, 9), flip=st.booleans())
def test_mutated_results_exit_0_or_2_without_traceback(text, figures, flip):
    with tempfile.TemporaryDirectory() as tmp:
        good, bad = Path(tmp) / "good", Path(tmp) / "bad"
        for folder in (good, bad):
            folder.mkdir()
        (good / "results.json").write_text(json.dumps(BASE))
        (bad / "results.json").write_text(text)
        first, second = (bad, good) if flip else (good, bad)
        commands = [
            ["report", bad] + ([] if figures == 0 else ["--no-figures"]),
            ["compare", first, second, "--cross-machine"]
            + (["--out", Path(tmp) / "cmp"] if figures == 1 else []),
            ["check", "--baseline", first, "--current", second, "--report-only"],
        ]
        for argv in commands:
            code, err = _run(argv)
            assert code in (0, 2), (argv[0], code, err)
            assert "Traceback" not in err
            if code == 2:
                assert err.count("\n") == 1, err
                assert err.startswith(f"rnnbench {argv[0]}: error: "), err


def test_rows_round_trip_exactly():
    """to_dict(from_dict(row)) is the stored row, for every row of the golden runs."""
    from bench.results import upgrade
    from bench.rows import CaseRow
    from bench.tta_rows import TTARow

    for name in ("run_a", "run_b"):
        doc = upgrade(json.loads((FIXTURES / name / "results.json").read_text()))
        for i, raw in enumerate(doc["cases"]):
            row = CaseRow.from_dict(raw, name, i)
            assert row.to_dict() == raw
            assert CaseRow.from_dict(row.to_dict()) == row
        for i, raw in enumerate(doc["tta"]):
            assert TTARow.from_dict(raw, name, i).to_dict() == raw


def test_row_median_falls_back_to_the_samples():
    from bench.cases import Case, Shape
    from bench.rows import CaseRow, CaseStats

    case = Case("basic_rnn", "dynamic", "cpu", Shape(2, 3, 4, 5))
    row = CaseRow(case.id, case, "ok", stats=CaseStats(samples_s=(3.0, 1.0, 2.0)))
    assert row.median() == 2.0
    assert CaseRow(case.id, case, "ok", stats=CaseStats(median_s=5.0, samples_s=(1.0,))
                   ).median() == 5.0
    assert CaseRow(case.id, case, "skipped").median() is None


@pytest.mark.parametrize("edit", sorted(HOSTILE))
def test_every_hostile_edit_is_refused_by_every_reader(edit):
    """Each hostile edit alone: report, compare and check exit 2 with one line."""
    doc = copy.deepcopy(BASE)
    HOSTILE[edit](doc, 3)
    with tempfile.TemporaryDirectory() as tmp:
        good, bad = Path(tmp) / "good", Path(tmp) / "bad"
        for folder in (good, bad):
            folder.mkdir()
        (good / "results.json").write_text(json.dumps(BASE))
        (bad / "results.json").write_text(to_text(doc))
        for argv in (["report", bad, "--no-figures"], ["compare", good, bad, "--cross-machine"],
                     ["check", "--baseline", good, "--current", bad, "--report-only"]):
            code, err = _run(argv)
            assert code == 2, (argv[0], err)
            assert err.count("\n") == 1, err
            assert "Traceback" not in err
