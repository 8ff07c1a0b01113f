"""Bad ab.json documents: the loader (bench.ab_results) refuses each with one line naming the
file and what is wrong; every committed ab.json (and gzipped raw document) still loads."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.ab_results import SCHEMA_VERSION, ABDocument, read_ab
from bench.errors import UserError

REPO = Path(__file__).resolve().parents[1]
COMMITTED = sorted([*REPO.glob("reports/**/ab.json"), *REPO.glob("reports/**/raw/*.json.gz")])


def _case(doc):
    return doc["cases"][0]


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


# (id, mutation of a valid document, text the one-line message must hold)
BAD_DOCUMENTS = [
    ("not-an-ab-file", lambda d: d.update(kind="rnnbench-results"), "not an rnnbench A/B file"),
    ("newer-version", lambda d: d.update(schema_version=SCHEMA_VERSION + 1),
     f"schema_version {SCHEMA_VERSION + 1} is newer than this rnnbench understands"),
    ("version-as-text", lambda d: d.update(schema_version="2"), "not a known ab.json version"),
    ("version-zero", lambda d: d.update(schema_version=0), "not a known ab.json version"),
    ("no-cases", lambda d: d.pop("cases"), "field cases is missing or not a list"),
    ("no-sides", lambda d: d.pop("sides"), "field sides is missing or not an object"),
    ("no-settings", lambda d: d.pop("settings"), "field settings is missing"),
    ("no-status", lambda d: d.pop("status"), "field status is None, not one of"),
    ("unknown-status", lambda d: d.update(status="done"), "field status is 'done'"),
    ("case-not-an-object", lambda d: d["cases"].append(3), "cases[2] is not an object"),
    ("case-without-id", lambda d: _case(d).pop("id"), "cases[0]: field id is missing"),
    ("id-disagrees-with-params", lambda d: _case(d)["case"].update(batch=64),
     "field id disagrees with its parameters"),
    ("batch-as-text", lambda d: _case(d)["case"].update(batch="16"),
     "field case.batch is '16', not an integer"),
    ("duplicate-case", lambda d: d["cases"].append(json.loads(json.dumps(_case(d)))),
     "appears twice"),
    ("side-missing", lambda d: _case(d).pop("a"), "field a.status is None"),
    ("side-status-unknown", lambda d: _case(d)["b"].update(status="fine"),
     "field b.status is 'fine'"),
    ("nan-round", lambda d: _case(d)["a"]["blocks"][0].__setitem__(0, float("nan")),
     "a.blocks[0][0] is nan, not a finite number"),
    ("infinite-round", lambda d: _case(d)["b"]["blocks"][1].__setitem__(1, float("inf")),
     "b.blocks[1][1] is inf, not a finite number"),
    ("negative-round", lambda d: _case(d)["a"]["blocks"][0].__setitem__(0, -1.0),
     "a.blocks[0][0] is -1.0, outside"),
    ("null-round", lambda d: _case(d)["a"]["blocks"][0].__setitem__(0, None),
     "a.blocks[0][0] is null"),
    ("block-not-a-list", lambda d: _case(d)["a"]["blocks"].__setitem__(0, 0.1),
     "a.blocks[0] is 0.1, not a list"),
    ("more-blocks-than-passes", lambda d: d.update(passes_done=2, pass_generation=[0, 1]),
     "a.blocks has 4 blocks for 2 passes done"),
    ("generations-disagree-with-passes", lambda d: d.update(pass_generation=[0, 1]),
     "pass_generation has 2 entries for 4 passes"),
    ("huge-integer-ratio", lambda d: _case(d)["verdict"].update(ratio=10 ** 400),
     "verdict.ratio"),
    ("nan-ratio", lambda d: _case(d)["verdict"].update(ratio=float("nan")),
     "verdict.ratio is nan, not a finite number"),
    ("infinite-ci", lambda d: _case(d)["verdict"].update(ci_high=float("inf")),
     "verdict.ci_high is inf"),
    ("ci-upside-down", lambda d: _case(d)["verdict"].update(ci_low=1.2, ci_high=1.1),
     "verdict.ci_low is above ci_high"),
    ("ci-level-above-1", lambda d: _case(d)["verdict"].update(ci_level=95),
     "verdict.ci_level is 95, outside [0, 1]"),
    ("p-as-text", lambda d: _case(d)["verdict"].update(p="0.01"),
     "verdict.p is '0.01', not a number"),
    ("unknown-verdict", lambda d: _case(d)["verdict"].update(verdict="slower"),
     "verdict.verdict is 'slower'"),
    ("verdict-of-another-case", lambda d: _case(d)["verdict"].update(case="x/y"),
     "verdict.case is 'x/y', not the case id"),
    ("fractional-pairs", lambda d: _case(d)["verdict"].update(pairs=2.5),
     "verdict.pairs is 2.5, not an integer"),
    ("nan-process-sd", lambda d: d.update(process_sd=float("nan")),
     "field process_sd is nan"),
    ("negative-alpha", lambda d: d["settings"].update(alpha=-0.05), "settings.alpha"),
    ("boolean-blocks", lambda d: d["settings"].update(blocks=True), "settings.blocks is True"),
    ("unknown-test-method", lambda d: d["test"].update(method="vibes"), "test.method"),
    ("env-var-not-text", lambda d: d["sides"]["A"].update(env_vars={"X": 1}),
     "sides.A.env_vars.X is 1, not a string"),
    ("fingerprint-not-an-object", lambda d: d["sides"]["B"].update(env_fingerprint=[1]),
     "sides.B.env_fingerprint is [1], not an object"),
    ("nan-in-a-free-form-part", lambda d: d["differences"].update(x=[float("nan")]),
     "field differences.x[0] is nan, not a finite number"),
]


@pytest.mark.parametrize(("change", "message"), [b[1:] for b in BAD_DOCUMENTS],
                         ids=[b[0] for b in BAD_DOCUMENTS])
def test_bad_document_is_one_line_naming_file_and_field(tmp_path, ab_doc, change, message):
    doc = ab_doc({"gru": "regression", "basic_rnn": "same"})
    change(doc)
    (tmp_path / "ab.json").write_text(json.dumps(doc))
    with pytest.raises(UserError) as err:
        read_ab(tmp_path)
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(str(tmp_path / "ab.json"))
    assert message in text


# (id, file text, the message)
BAD_FILES = [
    ("truncated", lambda text: text[: len(text) // 2], "malformed JSON"),
    ("empty", lambda text: "", "malformed JSON"),
    ("deeply-nested", lambda text: text.replace('"error": null', f'"error": {_deep(100_000)}'),
     "nested too deeply"),
    ("integer-too-long", lambda text: text.replace('"passes_done": 4',
                                                   '"passes_done": ' + "9" * 5000),
     "unreadable JSON"),
    ("not-utf8", lambda text: "\udcff", "not UTF-8"),
    ("a-list", lambda text: "[]", "not an rnnbench A/B file"),
]


@pytest.mark.parametrize(("damage", "message"), [b[1:] for b in BAD_FILES],
                         ids=[b[0] for b in BAD_FILES])
def test_damaged_file_is_one_line(tmp_path, ab_doc, damage, message):
    text = damage(json.dumps(ab_doc({"gru": "same"})))
    (tmp_path / "ab.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(UserError) as err:
        read_ab(tmp_path / "ab.json")
    assert "\n" not in str(err.value)
    assert message in str(err.value)


def test_missing_file_names_what_was_expected(tmp_path):
    with pytest.raises(UserError, match="no such A/B file"):
        read_ab(tmp_path)


def test_a_valid_document_round_trips_unchanged(ab_doc):
    doc = ab_doc({"gru": "regression", "basic_rnn": None})
    doc["something_new"] = {"kept": True}
    loaded = ABDocument.from_dict(doc)
    again = ABDocument.from_dict(json.loads(loaded.to_json()))
    assert again == loaded
    assert again.to_dict()["something_new"] == {"kept": True}
    assert [c.verdict.verdict if c.verdict else None for c in again.cases] == ["regression",
                                                                               None]


@pytest.mark.parametrize("path", COMMITTED, ids=[str(p.relative_to(REPO)) for p in COMMITTED])
def test_every_committed_ab_document_loads_and_is_upgraded(path):
    doc = read_ab(path)
    assert doc.cases
    assert doc.test is not None
    judged = [c.verdict for c in doc.cases if c.verdict and c.verdict.ci_low is not None]
    assert judged
    assert all(v.ci_level is not None and 0 < v.ci_level < 1 for v in judged)
    assert doc.sides["A"].versions.get("tensorflow")
    assert all(c.params["lengths"] == "full" for c in doc.cases)
    if doc.generations < 2:
        assert doc.process_sd is None


def test_a_one_generation_v1_file_says_its_process_spread_was_not_measured(tmp_path):
    gz = next(p for p in COMMITTED if p.suffix == ".gz")
    raw = json.loads(gzip.decompress(gz.read_bytes()))
    raw.update(schema_version=1, pass_generation=[0] * raw["passes_done"], process_sd=0.0)
    raw.pop("test", None)
    doc = ABDocument.from_dict(raw)
    assert doc.process_sd is None
    assert doc.test.method == "holm"


# Property: any mutation of a valid ab.json loads or is one UserError line, never a traceback.
_GARBAGE = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10 ** 30), max_value=10 ** 30),
    st.sampled_from([0, -1, 1e308, 10 ** 400, float("nan"), float("inf"), 2.5, "", "x"]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
    st.lists(st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.one_of(st.none(), st.integers()), max_size=3))


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:3]):
            yield from _paths(value, (*prefix, i))


@pytest.fixture(scope="module")
def small_ab() -> dict:
    doc = read_ab(REPO / "reports/reference/ab-smoke-2core-epyc-tf2.21-90pairs/example-aa-01")
    raw = doc.to_dict()
    raw["cases"] = raw["cases"][:3]
    for case in raw["cases"]:
        for side in ("a", "b"):
            case[side]["blocks"] = case[side]["blocks"][:4]
    return raw


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mutated_ab_document_loads_or_is_one_line(small_ab, data):
    doc = copy.deepcopy(small_ab)
    paths = [p for p in _paths(doc) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(_GARBAGE)
    try:
        loaded, error = ABDocument.from_dict(json.loads(json.dumps(doc))), None
    except UserError as exc:
        loaded, error = None, str(exc)
    if error is not None:
        assert "\n" not in error
    else:
        assert ABDocument.from_dict(json.loads(loaded.to_json())) == loaded
