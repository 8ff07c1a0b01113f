"""Cases: stable unique ids, presets, filters, FLOP formulas, bad filter values (no TensorFlow)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import pytest

from bench import cases
from bench.cases import Case, Shape
from bench.errors import UserError
from bench.measure.run import command as runner
from bench.measure.selection import explain_empty, select
from bench.registry import CORE, DTYPES, REGISTRY


def test_id_format_is_stable():
    case = Case("lstm_block_fused", "fused", "cpu", Shape(128, 28, 28, 128), phase="train_step")
    assert case.id == "lstm_block_fused/fused/cpu/b128-t28-i28-h128-l1/fp32/train_step"
    bi = Case("gru", "static", "gpu", Shape(1, 2, 3, 4, num_layers=2, bidirectional=True),
              xla=True)
    assert bi.id == "gru/static/gpu/b1-t2-i3-h4-l2-bi/fp32-xla/forward"


def test_params_round_trip():
    case = Case("keras_gru", "dynamic", "cpu", Shape(8, 5, 3, 4), phase="backward")
    assert Case.from_params({**case.params(), "extra": 1}) == case


@pytest.mark.parametrize("name", list(cases.PRESETS))
def test_preset_ids_unique_and_valid(name):
    chosen = cases.preset(name)
    ids = [c.id for c in chosen]
    assert chosen
    assert len(ids) == len(set(ids))
    for case in chosen:
        case.validate()


@pytest.mark.parametrize("name", list(cases.PRESETS))
def test_preset_ids_are_deterministic(name):
    assert [c.id for c in cases.preset(name)] == [c.id for c in cases.preset(name)]


def test_smoke_covers_every_cpu_impl_unroll_phase_and_the_cudnn_skips():
    smoke = cases.preset("smoke")
    combos = {(c.impl, c.unroll, c.phase) for c in smoke}
    assert {c.impl for c in smoke} == set(CORE)  # the Keras option variants are not in smoke
    for spec in (REGISTRY[name] for name in CORE):
        for unroll in spec.unrolls:
            for phase in cases.PHASES:
                assert (spec.name, unroll, phase) in combos
    assert {c.impl for c in smoke if c.impl.startswith("cudnn_")} == {"cudnn_lstm", "cudnn_gru"}


def test_filters_combine():
    smoke = cases.preset("smoke")
    chosen = select(smoke, impl=["keras_lstm", "gru"], unroll=["static"],
                          phase=["forward"])
    assert sorted(c.impl for c in chosen) == ["gru", "keras_lstm"]
    assert all(c.unroll == "static" and c.phase == "forward" for c in chosen)
    assert select(smoke, device=["gpu"]) == []


def test_keyword_is_substring_or_glob():
    smoke = cases.preset("smoke")
    by_sub = select(smoke, keyword="lstm_block/dynamic")
    assert {c.impl for c in by_sub} == {"lstm_block"}
    by_glob = select(smoke, keyword="*/static/*/train_step")
    assert by_glob
    assert all(c.unroll == "static" and c.phase == "train_step" for c in by_glob)


@pytest.mark.parametrize(("kw", "value", "message"), [
    ("impl", ["lstmx"], "unknown implementation 'lstmx'"),
    ("unroll", ["sideways"], "unknown unroll mode"),
    ("phase", ["inference"], "unknown phase"),
    ("device", ["tpu"], "unknown device"),
])
def test_bad_filter_values_are_user_errors(kw, value, message):
    with pytest.raises(UserError, match=message):
        select(cases.preset("smoke"), **{kw: value})


def test_unknown_preset_lists_valid_names():
    with pytest.raises(UserError, match="unknown preset 'huge'; valid: smoke"):
        cases.preset("huge")


def test_runner_selection_splits_commas_and_sets_xla():
    assert runner.split_values(["a,b", "c", " , "]) == ["a", "b", "c"]
    assert runner.split_values(None) is None
    chosen = runner.selected_cases("smoke", impl=["keras_lstm,basic_rnn"], phase=["forward"],
                                   xla=True)
    assert {c.impl for c in chosen} == {"keras_lstm", "basic_rnn"}
    assert all(c.xla and c.id.endswith("/fp32-xla/forward") for c in chosen)


def _case(impl, phase="forward", **shape):
    unroll = "fused" if impl.startswith(("cudnn", "lstm_block_fused")) else "dynamic"
    return Case(impl, unroll, "cpu", Shape(**{"batch": 4, "seq_len": 5, "input_size": 3,
                                              "hidden_size": 7, **shape}), phase=phase)


@pytest.mark.parametrize(("impl", "gates"), [("keras_lstm", 4), ("lstm_block_fused", 4),
                                             ("gru", 3), ("keras_gru", 3), ("basic_rnn", 1)])
def test_forward_flops_formula(impl, gates):
    b, t, i, h = 4, 5, 3, 7
    assert _case(impl).forward_flops() == 2 * b * t * (i + h) * gates * h


def test_flops_for_phases_layers_and_directions():
    one = 2 * 4 * 5 * (3 + 7) * 4 * 7
    assert _case("keras_lstm", phase="backward").flops() == 3 * one
    assert _case("keras_lstm", phase="train_step").flops() == 3 * one
    assert _case("keras_lstm", bidirectional=True).flops() == 2 * one
    # the second layer reads the first layer's output (hidden × directions wide)
    second = 2 * 4 * 5 * (7 * 2 + 7) * 4 * 7
    assert _case("keras_lstm", num_layers=2, bidirectional=True).flops() == 2 * (one + second)


STORED_RUNS = {"smoke": "reports/baselines/smoke-cpu/results.json",
               "cpu": "reports/reference/cpu-2core-tf2.21/results.json"}


@pytest.mark.parametrize(("name", "stored"), list(STORED_RUNS.items()))
def test_preset_ids_and_params_match_stored_runs(name, stored):
    """Ids are byte-identical to those of runs made before, the flat `case` dicts are after the
    v1 -> v2 schema step, and every stored row rebuilds to the same case."""
    import json
    from pathlib import Path

    from bench.results import upgrade

    doc = json.loads((Path(__file__).resolve().parents[1] / stored).read_text())
    assert doc["schema_version"] == 1  # stored before `lengths`: the upgrade step adds it
    rows = upgrade(doc)["cases"]
    assert [c.id for c in cases.preset(name)] == [row["id"] for row in rows]
    assert [json.dumps(c.params()) for c in cases.preset(name)] == [
        json.dumps(row["case"]) for row in rows]
    for row in rows:
        assert Case.from_params(row["case"]).id == row["id"]


@pytest.mark.parametrize(("preset", "filters", "reason"), [
    ("smoke", {"impl": ["lstm_block_fused"], "unroll": ["static"]},
     "lstm_block_fused supports only unroll fused"),
    ("smoke", {"device": ["gpu"]}, "the smoke preset has no gpu cases (it has cpu); "
                                   "use --preset gpu"),
    ("scaling", {"impl": ["gru"]}, "the scaling preset has no gru implementation cases"),
    ("gpu", {"impl": ["lstm_block_fused"], "device": ["cpu"]},
     "the gpu preset has no cpu cases (it has gpu); use --preset smoke"),
    ("smoke", {"impl": ["keras_lstm"], "keyword": "*/static/*/nope"},
     "no case id contains or matches -k '*/static/*/nope'"),
])
def test_an_empty_selection_names_the_filter_and_why(preset, filters, reason):
    assert select(cases.preset(preset), **filters) == []
    assert explain_empty(preset, **filters).startswith(reason)
    with pytest.raises(UserError, match="matches the filters: " + re.escape(reason)):
        runner.selected_cases(preset, **filters)


def test_new_dimensions_extend_the_id_only_when_not_default():
    shape = Shape(128, 28, 28, 128)
    plain = Case("keras_lstm", "dynamic", "cpu", shape)
    assert plain.id == "keras_lstm/dynamic/cpu/b128-t28-i28-h128-l1/fp32/forward"
    ragged = Case("keras_lstm", "dynamic", "cpu", shape, dtype="bf16", xla=True,
                  lengths="ragged")
    assert ragged.id == "keras_lstm/dynamic/cpu/b128-t28-i28-h128-l1-ragged/bf16-xla/forward"
    assert Case.from_params(ragged.params()) == ragged
    assert Case.from_params({k: v for k, v in plain.params().items() if k != "lengths"}) == plain


def test_ragged_lengths_are_seeded_and_between_half_and_full():
    shape = Shape(64, 28, 28, 128)
    lengths = cases.ragged_lengths(shape)
    assert lengths == cases.ragged_lengths(shape)
    assert len(lengths) == 64
    assert all(14 <= n <= 28 for n in lengths)
    assert lengths[0] == 28  # padded to its longest member
    assert lengths[-1] == 14
    assert len(set(lengths)) > 5  # really ragged, not one length
    assert cases.ragged_lengths(shape, seed=1) != lengths
    odd = cases.ragged_lengths(Shape(50, 5, 1, 1))
    assert min(odd) >= 3
    assert max(odd) <= 5
    assert Case("gru", "static", "cpu", shape).sequence_lengths() is None
    assert Case("gru", "static", "cpu", shape, lengths="ragged").sequence_lengths() == lengths


@pytest.mark.parametrize(("impl", "unroll", "dims", "reason"), [
    ("lstm_block", "static", {"dtype": "bf16"}, "LSTMBlockCell has no bfloat16 kernel"),
    ("lstm_block_fused", "fused", {"lengths": "ragged"}, "BlockLSTM takes only seq_len_max"),
    ("gru_block", "dynamic", {"dtype": "fp16"}, "GRUBlockCell has only a float32 kernel"),
    ("gru_block", "dynamic", {"lengths": "ragged"}, "GRUBlockCell is one time step"),
])
def test_unsupported_dimensions_name_the_kernel(impl, unroll, dims, reason):
    case = Case(impl, unroll, "cpu", Shape(2, 3, 4, 5), **dims)
    assert case.limitation().startswith(reason)


@pytest.mark.parametrize("impl", ["basic_lstm", "keras_lstm", "keras_gru", "gru"])
def test_supported_dimensions_have_no_limitation(impl):
    for dtype in DTYPES:
        for lengths in ("full", "ragged"):
            unroll = REGISTRY[impl].unrolls[0]
            case = Case(impl, unroll, "cpu", Shape(2, 3, 4, 5), dtype=dtype, lengths=lengths)
            assert case.limitation() is None


def test_dimension_presets_cover_their_dimension():
    precision = cases.preset("precision")
    assert {c.dtype for c in precision} == set(DTYPES)
    assert {c.device for c in precision} == {"cpu", "gpu"}
    assert {c.lengths for c in cases.preset("ragged")} == {"full", "ragged"}
    assert {c.xla for c in cases.preset("xla")} == {False, True}
    latency = cases.preset("latency")
    assert {c.phase for c in latency} == {"forward"}
    assert {c.shape.batch for c in latency} == {1}
    assert {c.shape.seq_len for c in latency} == {1, 16, 100}
    assert {c.shape.hidden_size for c in latency} == {128, 512}
    assert {"keras_lstm_auto", "keras_lstm_rdrop"} <= {c.impl for c in cases.preset("gpu")}


def test_dtype_and_lengths_filters():
    chosen = select(cases.preset("precision"), dtype=["bf16"], device=["cpu"])
    assert chosen
    assert {c.dtype for c in chosen} == {"bf16"}
    chosen = runner.selected_cases("ragged", lengths=["ragged"], impl=["gru"])
    assert chosen
    assert all(c.lengths == "ragged" and c.impl == "gru" for c in chosen)
    with pytest.raises(UserError, match="unknown dtype 'fp8'; valid: fp32, bf16, fp16"):
        select(cases.preset("precision"), dtype=["fp8"])
    with pytest.raises(UserError, match="the smoke preset has no bf16 cases"):
        runner.selected_cases("smoke", dtype=["bf16"])


@dataclass(frozen=True)
class _WideCase(Case):
    """A case with one more dimension, to show that every derived name follows the table."""

    width: str = "narrow"


def _add_width(monkeypatch, **declared) -> cases.Dimension:
    """Declare the fake `width` dimension in the table (a filter, stored after every other)."""
    width = cases.Dimension("width", ("narrow", "wide"), "narrow", filter="width", since=99,
                            **declared)
    monkeypatch.setattr(cases, "DIMENSIONS", (*cases.DIMENSIONS, width))
    monkeypatch.setattr(cases, "FILTERS", (*cases.FILTERS, width))
    return width


def test_a_new_dimension_reaches_ids_filters_options_and_group_keys(monkeypatch):
    from bench.measure import options

    plain = Case("gru", "static", "cpu", cases.SMOKE_SHAPE).id
    _add_width(monkeypatch, part="shape")
    narrow = _WideCase("gru", "static", "cpu", cases.SMOKE_SHAPE)
    wide = replace(narrow, width="wide")
    assert narrow.id == plain  # a dimension at its default leaves the id unchanged
    assert wide.id == "gru/static/cpu/b16-t10-i8-h32-l1-wide/fp32/forward"
    assert wide.group_labels() == ("forward", "cpu", "b16-t10-i8-h32-l1-wide", "fp32")
    assert narrow.group_labels() != wide.group_labels()
    assert select([narrow, wide], width=["wide"]) == [wide]
    with pytest.raises(UserError, match="unknown width 'tall'; valid: narrow, wide"):
        select([narrow], width=["tall"])
    assert cases.param_types()["width"] is str
    assert list(wide.params())[-1] == "width"  # stored after the keys of every earlier row
    assert _WideCase.from_params(wide.params()) == wide
    before = {k: v for k, v in wide.params().items() if k != "width"}  # stored before it
    assert _WideCase.from_params(before) == narrow
    flags = {flag for opt in options.build_options() for flag in opt.run_flags}
    assert "--width" in flags


def test_a_new_dimension_with_its_own_id_part_reaches_every_table(monkeypatch):
    """ids, filters, stored params, the terminal summary, report, compare and plot groups."""
    import pandas as pd

    from bench.analysis import compare_frames, heatmap, plots, report, summary
    from bench.rows import CaseRow, CaseStats

    _add_width(monkeypatch)
    narrow = [_WideCase("keras_lstm", "dynamic", "cpu", replace(cases.SMOKE_SHAPE, seq_len=t))
              for t in (8, 16, 32)]
    wide = [replace(c, width="wide") for c in narrow]
    assert wide[0].id == "keras_lstm/dynamic/cpu/b16-t8-i8-h32-l1/fp32/forward/wide"
    assert select(narrow + wide, width=["narrow"]) == narrow
    assert [_WideCase.from_params(c.params()) for c in wide] == wide
    assert cases.group_columns() == ("phase", "device", "shape", "precision", "width")

    rows = [CaseRow(id=c.id, case=c, status="ok", stats=CaseStats(median_s=1e-3, rounds=5))
            for c in narrow + wide]
    text = summary.summary_table(rows)
    assert "forward · cpu · b16-t8-i8-h32-l1 · fp32 · narrow" in text
    assert "forward · cpu · b16-t8-i8-h32-l1 · fp32 · wide" in text

    frame = pd.DataFrame([{**c.params(), **cases.id_parts(c), "status": "ok", "median_s": 1e-3}
                          for c in narrow + wide])
    groups = report.step_time_groups(frame)
    assert ("forward", "cpu", "b16-t8-i8-h32-l1", "fp32", "wide") in dict(groups)
    assert len(groups) == 6  # 3 shapes × 2 widths
    sweeps = plots.find_sweeps(frame)
    assert sorted(s["base"]["width"] for s in sweeps) == ["narrow", "wide"]
    assert all(s["rows"]["width"].nunique() == 1 for s in sweeps)

    facts = {row.id: compare_frames.describe(row) for row in rows}
    assert facts[wide[0].id]["width"] == "wide"
    assert compare_frames.group_keys() == ("phase", "shape", "precision", "width")
    sets = [compare_frames.RunSet(label, label, ()) for label in "AB"]
    cells = [{c: compare_frames.Cell("ok", 1e-3, runs=1) for c in facts}] * 2
    common = compare_frames.common_cases(cells, facts)
    table = compare_frames.summary_frame(sets, cells, facts, common)
    assert len(table) == 6
    assert set(table["width"]) == {"narrow", "wide"}
    labels = heatmap._row_labels(pd.DataFrame([facts[c] for c in common]))
    assert labels[0].endswith(" · narrow")


def test_every_preset_is_one_record():
    for name, found in cases.PRESETS.items():
        assert found.name == name
        assert found.help
        assert found.cases()
        assert found.rounds.min_rounds >= cases.MIN_ROUNDS
