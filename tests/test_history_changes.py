"""Change points on seeded synthetic series: steps, creeps, outliers, a moved A/B reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from bench import cli
from bench.history.changes import IMPROVEMENT, REGRESSION, benjamini_hochberg, find_changes
from bench.history.series import CHAINED, NEW_REFERENCE, order, segmented
from bench.history.store import open_store
from tests.history_data import smoke_cases, write_history, write_run

SD = 0.025  # the calibration's median sd(log) of a case's A/B ratio


def frame_of(values, *, refs=None, commits=None, metric="ab_ratio", series="s1"):
    """A points frame of one series (the columns points_frame gives)."""
    n = len(values)
    commits = commits or [f"c{i:03d}" for i in range(n)]
    return order(pd.DataFrame({
        "series": series, "run_id": [f"run{i:03d}" for i in range(n)], "case_id": series,
        "metric": metric, "machine": "m", "machine_label": "M", "impl": "keras_lstm",
        "phase": "forward", "commit_sha": commits, "commit_time": None,
        "created_utc": [f"2026-11-01T00:{i // 60:02d}:{i % 60:02d}Z" for i in range(n)],
        "value": np.asarray(values, dtype=float), "ci_low": None, "ci_high": None, "n": 90,
        "status": "complete", "reference_sha": refs or ["ref0"] * n, "peak_gflops": None}))


def noisy(multipliers, seed):
    rng = np.random.default_rng(seed)
    return np.asarray(multipliers) * np.exp(rng.normal(0, SD, len(multipliers)))


def test_aa_series_give_no_change():
    frames = [frame_of(noisy(np.ones(30), seed), series=f"s{seed}") for seed in range(20)]
    assert len(find_changes(pd.concat(frames, ignore_index=True))) <= 1


def test_a_step_is_found_at_its_commit_with_its_effect():
    hits = 0
    for seed in range(20):
        values = noisy(np.r_[np.ones(20), np.full(10, 1.08)], seed)
        found = find_changes(frame_of(values))
        if len(found) == 1 and abs(found["index"].iloc[0] - 20) <= 1:
            hits += 1
            row = found.iloc[0]
            assert row["kind"] == REGRESSION
            assert row["ci_low"] < 0.08 < row["ci_high"] or abs(row["effect"] - 0.08) < 0.03
            assert row["commit_after"] in {"c019", "c020", "c021"}
    assert hits >= 18


def test_an_improvement_is_an_improvement():
    found = find_changes(frame_of(noisy(np.r_[np.ones(15), np.full(15, 0.85)], 3)))
    assert found["kind"].tolist() == [IMPROVEMENT]
    assert found["effect"].iloc[0] == pytest.approx(-0.15, abs=0.03)


def test_a_creep_is_one_change_of_its_total_size():
    creep = np.r_[np.ones(15), 1.03 ** np.arange(1, 5), np.full(11, 1.03 ** 4)]
    effects, extra = [], 0
    for seed in range(10):
        found = find_changes(frame_of(noisy(creep, seed)))
        mine = found[found["index"].between(14, 19)]
        assert len(mine) == 1, found
        extra += len(found) - 1
        effects.append(mine["effect"].iloc[0])
    assert extra <= 1
    assert np.median(effects) == pytest.approx(1.03 ** 4 - 1, abs=0.025)


def test_outliers_are_not_changes():
    values = noisy(np.ones(30), 5)
    values[[7, 19]] *= 1.4
    values[25] *= 0.7
    assert find_changes(frame_of(values)).empty


def test_threshold_is_the_minimum_effect():
    rng = np.random.default_rng(9)
    values = np.r_[np.ones(15), np.full(15, 1.03)] * np.exp(rng.normal(0, 0.003, 30))
    assert find_changes(frame_of(values), threshold=0.05).empty
    assert len(find_changes(frame_of(values), threshold=0.02)) == 1


def test_false_discoveries_are_controlled_over_many_series():
    frames = [frame_of(noisy(np.ones(30), 100 + k), series=f"s{k}") for k in range(60)]
    assert len(find_changes(pd.concat(frames, ignore_index=True))) <= 1


def test_benjamini_hochberg_adjusts_like_the_definition():
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.5]) == pytest.approx(
        [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    assert benjamini_hochberg([]) == []


def _moved(bridge: bool):
    """15 ratios against ref0, then 15 against ref1 — a reference 10 % slower than ref0, so the
    raw ratios drop by 10 % although nothing changed in the measured trees."""
    values = list(noisy(np.ones(15), 1)) + list(noisy(np.full(15, 1 / 1.10), 2))
    commits = [f"c{i:03d}" for i in range(30)]
    if bridge:
        commits[14] = "ref1"  # the last run against ref0 measured ref1 itself
        values[14] = 1.10
    return frame_of(values, refs=["ref0"] * 15 + ["ref1"] * 15, commits=commits)


def test_a_moved_reference_without_a_bridge_starts_a_marked_segment():
    seg = segmented(_moved(bridge=False))
    assert seg["segment"].tolist() == [0] * 15 + [1] * 15
    assert seg["marker"].tolist()[15] == NEW_REFERENCE
    assert find_changes(_moved(bridge=False)).empty  # no silent jump reported as a change


def test_a_moved_reference_chains_through_a_run_that_measured_both():
    seg = segmented(_moved(bridge=True))
    assert set(seg["segment"]) == {0}
    assert seg["marker"].tolist()[15] == CHAINED
    assert np.exp(np.log(seg["level"][15:]).mean()) == pytest.approx(1.0, abs=0.03)
    # A real 8 % step after the chain is still found, on the old reference's scale.
    frame = _moved(bridge=True)
    frame.loc[22:, "value"] *= 1.08
    found = find_changes(frame)
    assert len(found) == 1
    assert abs(found["index"].iloc[0] - 22) <= 1


def _cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_changes_exit_code_follows_the_latest_window(tmp_path, capsys):
    store = tmp_path / "h.sqlite"
    write_history(tmp_path / "runs", 26, step_at=20, step=1.12, sd=0.01)
    _cli(capsys, "history", "add", tmp_path / "runs", "--store", store)
    code, out, _ = _cli(capsys, "history", "changes", "--store", store)
    assert code == 1, out
    assert "regression (latest)" in out
    assert "keras_lstm" in out
    assert "basic_rnn" not in out
    assert "0000013c..0000014c" in out  # commit 19 .. commit 20: where the step is
    code, out, _ = _cli(capsys, "history", "changes", "--store", store, "--since", "2")
    assert code == 0
    assert "0 regressions in the latest window (last 2 points)" in out
    code, _, _ = _cli(capsys, "history", "changes", "--store", store, "--since", "2026-11-01")
    assert code == 1
    code, _, _ = _cli(capsys, "history", "changes", "--store", store, "--since", "0000017c")
    assert code == 0
    code, _, err = _cli(capsys, "history", "changes", "--store", store, "--since", "abcdef9")
    assert code == 2
    assert "no point of the selected series has that commit" in err
    code, out, _ = _cli(capsys, "history", "changes", "--store", store, "--impl", "basic_rnn")
    assert code == 0
    assert "no change of 5% or more" in out
    code, _, err = _cli(capsys, "history", "changes", "--store", store, "--impl", "nope")
    assert code == 2
    assert "unknown implementation 'nope'" in err
    code, _, err = _cli(capsys, "history", "changes", "--store", store, "--impl", "cudnn_gru")
    assert code == 2
    assert "no points match" in err  # a registered implementation with no points here
    code, _, err = _cli(capsys, "history", "changes", "--store", store, "--out",
                        tmp_path / "no" / "changes.csv")
    assert code == 2
    assert "cannot write" in err
    out_csv = tmp_path / "changes.csv"
    _cli(capsys, "history", "changes", "--store", store, "--out", out_csv)
    assert len(pd.read_csv(out_csv)) == 6 + 1  # the six keras_lstm cases and their mean


def test_ab_folders_make_ratio_series(tmp_path, capsys, ab_doc):
    """A/B runs over commits against one reference; the last two measured a 15 % slowdown."""
    for i in range(14):
        doc = ab_doc({"keras_lstm": "same", "basic_rnn": "same"})
        doc["run_id"] = f"ab{i:02d}"
        doc["created_utc"] = f"2026-11-02T{i:02d}:00:00Z"
        env = {"cpu_model": "Test CPU", "intra_op_threads": 1}
        doc["sides"]["A"].update(src_sha="a" * 40, env_fingerprint=env)
        doc["sides"]["B"].update(src_sha=f"{i:02d}" + "b" * 38, env_fingerprint=env)
        for case in doc["cases"]:
            slow = case["case"]["impl"] == "keras_lstm" and i >= 8
            ratio = (1.15 if slow else 1.0) * math.exp(0.01 * ((i * 7) % 5 - 2))
            case["verdict"].update(ratio=ratio, ci_low=ratio * 0.97, ci_high=ratio * 1.03)
        (tmp_path / "ab" / doc["run_id"]).mkdir(parents=True)
        (tmp_path / "ab" / doc["run_id"] / "ab.json").write_text(json.dumps(doc))
    store = tmp_path / "h.sqlite"
    code, out, _ = _cli(capsys, "history", "add", tmp_path / "ab", "--store", store)
    assert code == 0
    assert "14 added" in out
    with open_store(str(store)) as s:
        refs = s.execute("SELECT DISTINCT reference_sha, metric FROM points")
    assert refs == [("a" * 40, "ab_ratio")]
    code, out, _ = _cli(capsys, "history", "changes", "--store", store)
    assert code == 1
    assert out.count("regression (latest)") == 1
    assert "keras_lstm" in out
    assert "07bbbbbbbb..08bbbbbbbb" in out


def test_series_and_normalized_series(tmp_path, capsys):
    store = tmp_path / "h.sqlite"
    write_history(tmp_path / "runs", 8)
    _cli(capsys, "history", "add", tmp_path / "runs", "--store", store)
    code, out, _ = _cli(capsys, "history", "series", "--store", store, "--impl", "basic_rnn")
    assert code == 0
    rows = [ln for ln in out.splitlines() if ln.startswith("| basic_rnn/")]
    assert len(rows) == 6
    assert all("| 8 |" in r for r in rows)
    from bench.history.series import Filters, normalized, points_frame

    with open_store(str(store)) as s:
        frame = points_frame(s, Filters(impl=("basic_rnn",)))
    norm = normalized(frame)
    assert sorted(norm["value"]) == pytest.approx(sorted(frame["value"] * 50.0))
    assert set(norm["metric"]) == {"median_s*peak"}


def test_goal_script_runs_on_the_committed_calibration(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / ".ci/history_goals.py"), "--trials", "2",
                           "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    goals = pd.read_csv(tmp_path / "goals.csv")
    assert len(goals) == 5
    assert goals["trials"].eq(2).all()
    assert "20 A/A runs × 45 judged cases" in (tmp_path / "goals.md").read_text()


def _impls_shown(out: str) -> set[str]:
    """The implementations of the case rows of a `history series` table."""
    return {ln.split("|")[1].strip().split("/")[0] for ln in out.splitlines()
            if ln.startswith("| ") and "/" in ln.split("|")[1]}


def test_several_implementations_filter_together(tmp_path, capsys):
    import sqlite3

    store = tmp_path / "h.sqlite"
    cases = smoke_cases(("basic_rnn", "keras_lstm", "gru"))
    for i in range(3):
        write_run(tmp_path / "runs" / f"r{i}", f"r{i}", commit=f"{i:07x}c", cases=cases,
                  created=f"2026-11-01T0{i}:00:00Z", seed=i)
    _cli(capsys, "history", "add", tmp_path / "runs", "--store", store)
    shown = {}
    for argv in (["--impl", "basic_rnn,gru"], ["--impl", "basic_rnn", "--impl", "gru"],
                 ["--impl", "gru", "basic_rnn"]):
        code, out, err = _cli(capsys, "history", "series", "--store", store, *argv)
        assert code == 0, err
        shown[" ".join(argv)] = out
    assert len(set(shown.values())) == 1  # one grammar: commas, repeats and spaces alike
    assert _impls_shown(next(iter(shown.values()))) == {"basic_rnn", "gru"}
    code, out, _ = _cli(capsys, "history", "series", "--store", store)
    assert _impls_shown(out) == {"basic_rnn", "keras_lstm", "gru"}
    # An implementation since removed from the registry keeps its history.
    with sqlite3.connect(store) as db:
        db.execute("UPDATE points SET impl = 'old_rnn' WHERE impl = 'gru'")
    db.close()
    code, out, err = _cli(capsys, "history", "series", "--store", store, "--impl",
                          "old_rnn,keras_lstm")
    assert code == 0, err
    assert _impls_shown(out) == {"gru", "keras_lstm"}  # gru's case ids, old_rnn's points
    code, _, err = _cli(capsys, "history", "series", "--store", store, "--impl", "nope")
    assert code == 2
    assert err.strip().endswith(", keras_lstm_rdrop, old_rnn")  # the registry, then the store


def test_phases_metrics_and_machines_take_the_same_list_grammar(tmp_path, capsys):
    from bench.history.series import Filters, points_frame

    store = tmp_path / "h.sqlite"
    write_history(tmp_path / "runs", 3)
    _cli(capsys, "history", "add", tmp_path / "runs", "--store", store)
    with open_store(str(store)) as s:
        everything = points_frame(s, Filters())
        label = everything["machine_label"].iloc[0]
        both = points_frame(s, Filters(phase=("forward", "backward")))
        by_label = points_frame(s, Filters(machine=(label, "no-such-machine")))
        by_id = points_frame(s, Filters(machine=(everything["machine"].iloc[0],)))
    assert set(both["phase"]) == {"forward", "backward"} < set(everything["phase"])
    assert len(by_label) == len(by_id) == (everything["machine_label"] == label).sum()
    outs = set()
    for argv in (["--phase", "forward,backward"], ["--phase", "forward", "--phase", "backward"],
                 ["--phase", "backward", "forward", "--metric", "median_s"]):
        code, out, err = _cli(capsys, "history", "series", "--store", store, *argv)
        assert code == 0, err
        outs.add(out)
    assert len(outs) == 1
    with pytest.raises(TypeError, match="tuple of names"):
        Filters(impl="gru")  # would match 'g', 'r' and 'u'
