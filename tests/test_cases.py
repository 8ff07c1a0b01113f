"""Cases: stable unique ids, presets, filters, FLOP formulas, bad filter values (no TensorFlow)."""

from __future__ import annotations

import re

import pytest

from bench import cases
from bench.cases import Case, Shape
from bench.errors import UserError
from bench.measure import run as runner
from bench.registry import REGISTRY


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
    for spec in REGISTRY.values():
        for unroll in spec.unrolls:
            for phase in cases.PHASES:
                assert (spec.name, unroll, phase) in combos
    assert {c.impl for c in smoke if c.impl.startswith("cudnn_")} == {"cudnn_lstm", "cudnn_gru"}


def test_filters_combine():
    smoke = cases.preset("smoke")
    chosen = cases.select(smoke, impl=["keras_lstm", "gru"], unroll=["static"],
                          phase=["forward"])
    assert sorted(c.impl for c in chosen) == ["gru", "keras_lstm"]
    assert all(c.unroll == "static" and c.phase == "forward" for c in chosen)
    assert cases.select(smoke, device=["gpu"]) == []


def test_keyword_is_substring_or_glob():
    smoke = cases.preset("smoke")
    by_sub = cases.select(smoke, keyword="lstm_block/dynamic")
    assert {c.impl for c in by_sub} == {"lstm_block"}
    by_glob = cases.select(smoke, keyword="*/static/*/train_step")
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
        cases.select(cases.preset("smoke"), **{kw: value})


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
    """Ids and the flat `case` dicts are byte-identical to those of runs made before (results
    schema unchanged), and every stored row rebuilds to the same case."""
    import json
    from pathlib import Path

    doc = json.loads((Path(__file__).resolve().parents[1] / stored).read_text())
    rows = doc["cases"]
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
    assert cases.select(cases.preset(preset), **filters) == []
    assert cases.explain_empty(preset, **filters).startswith(reason)
    with pytest.raises(UserError, match="matches the filters: " + re.escape(reason)):
        runner.selected_cases(preset, **filters)
