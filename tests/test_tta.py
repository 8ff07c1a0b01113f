"""Time-to-accuracy: budget syntax, settings checks, tiny real training runs, CLI and results."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest

from bench import cli, results
from bench.analysis import tta_summary
from bench.errors import UserError
from bench.tta import command as tta
from bench.tta import mnist as data
from bench.tta import settings as tts
from bench.tta import train
from bench.tta_rows import TTARow

# The tiny recipe of the training tests: a fused LSTM (fast to trace) with a high learning rate
# learns well above chance (0.1) in 60 steps, about a second on 2 cores.
TINY = tts.TTASettings(task="row", impl="lstm_block_fused", unroll="fused", hidden_size=32,
                       lr=1e-2, target=1.0, budget=tts.Budget("steps", 60), eval_every=20)


@pytest.fixture(scope="module")
def row_data() -> data.TaskData:
    return data.task_data(data.load_subset(), "row")


@pytest.fixture(scope="module")
def tiny_run(row_data) -> TTARow:
    """One real training run that cannot reach its target (1.0) within its budget."""
    return train.run_tta(TINY, row_data, data_info=data.load_subset().describe())


# Budget syntax ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "kind", "value"), [
    ("90s", "seconds", 90.0), ("2m", "seconds", 120.0), ("1.5min", "seconds", 90.0),
    ("5ep", "epochs", 5.0), ("0.5epochs", "epochs", 0.5), ("200steps", "steps", 200.0),
    (" 30 S ", "seconds", 30.0),
])
def test_parse_budget(text, kind, value):
    budget = tts.parse_budget(text)
    assert (budget.kind, budget.value) == (kind, value)


@pytest.mark.parametrize("text", ["90", "ep", "5 epochs please", "0s", "-3ep", "1.5steps",
                                  "10h", ""])
def test_parse_budget_rejects(text):
    with pytest.raises(UserError, match="--budget"):
        tts.parse_budget(text)


def test_budget_settings_round_trip():
    assert tts.parse_budget("90s").settings() == {"budget_s": 90.0}
    assert tts.parse_budget("5ep").settings() == {"budget_epochs": 5.0}
    assert str(tts.parse_budget("2m")) == "120s"


# Settings ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "message"), [
    ({"target": 0.0}, r"--target: must be in \(0, 1\], got 0.0"),
    ({"target": 1.5}, r"--target: must be in \(0, 1\], got 1.5"),
    ({"target": -0.2}, r"must be in \(0, 1\]"),
    ({"lr": 0.0}, "--lr: must be positive, got 0.0"),
    ({"lr": math.nan}, "--lr: 'nan' is not a finite number"),
    ({"clip": -1.0}, "--clip: must be positive, got -1.0"),
    ({"batch": 0}, "--batch: must be at least 1, got 0"),
    ({"hidden_size": 0}, "--hidden: must be at least 1"),
    ({"num_layers": 1.5}, "--layers: '1.5' is not an integer"),
    ({"eval_every": -3}, "--eval-every: must be at least 1, got -3"),
    ({"optimizer": "sgd"}, "unknown optimizer 'sgd'"),
    ({"impl": "lstm9000"}, "unknown implementation 'lstm9000'"),
    ({"unroll": "dynamic"}, "lstm_block_fused does not support unroll='dynamic'"),
    ({"task": "column"}, "unknown task 'column'"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
])
def test_settings_validation(change, message):
    with pytest.raises(UserError, match=message):
        dataclasses.replace(TINY, **change).validate()


def test_target_one_is_allowed():
    assert dataclasses.replace(TINY, target=1.0).validate().target == 1.0


def test_settings_id_and_record():
    settings = dataclasses.replace(TINY, bidirectional=True, num_layers=2, seed=3)
    assert settings.id == "row/lstm_block_fused/fused/cpu/h32-l2-bi/b128/seed3"
    record = settings.record()
    assert record["budget_steps"] == 60
    assert record["budget"] == "60steps"
    assert "budget_s" not in record


def test_pairs_all_skips_gpu_only_impls_on_cpu():
    pairs = tta._pairs(["all"], [tts.AUTO], "cpu")
    by_impl = {impl: (unroll, skip) for impl, unroll, skip in pairs}
    assert by_impl["lstm_block_fused"] == ("fused", None)
    assert by_impl["basic_lstm"] == ("dynamic", None)
    assert "needs a GPU" in by_impl["cudnn_lstm"][1]


def test_pairs_expand_each_supported_mode():
    pairs = tta._pairs(["basic_rnn", "lstm_block_fused"], ["static", "dynamic", "auto"], "cpu")
    assert [(i, u) for i, u, _ in pairs] == [("basic_rnn", "static"), ("basic_rnn", "dynamic"),
                                             ("lstm_block_fused", "fused")]


# Real training ----------------------------------------------------------------------------------

def test_tiny_run_learns_and_reports_a_budget_miss(tiny_run):
    stats = tiny_run.stats
    assert tiny_run.status == "ok"
    assert stats.reached is False
    assert stats.time_to_target_s is None
    assert "not reached within 60steps" in tiny_run.reason
    curve = stats.curve
    assert [p["step"] for p in curve] == [20, 40, 60]
    accs = [p["heldout_acc"] for p in curve]
    assert stats.best_acc == max(accs)
    assert stats.final_acc == accs[-1]
    assert stats.best_acc > 0.5  # chance is 0.1
    assert curve[-1]["train_loss"] < curve[0]["train_loss"] < math.log(10) + 0.5
    walls = [p["wall_s"] for p in curve]
    assert walls == sorted(walls)
    assert stats.train_s == walls[-1]
    assert stats.steps == 60
    assert stats.epochs == pytest.approx(60 / 31)
    assert stats.eval_s > 0
    assert stats.compile_s > 0
    assert stats.diverged is False
    settings = tiny_run.settings
    assert settings["data_source"] == "subset"
    assert settings["steps_per_epoch"] == 31
    assert settings["permutation_seed"] is None
    assert settings["eval_in_wall_clock"] is False


def test_run_stops_at_first_evaluation_reaching_target(row_data, tiny_run):
    target = tiny_run.stats.curve[1]["heldout_acc"] - 1e-9  # reached at the 2nd eval
    row = train.run_tta(dataclasses.replace(TINY, target=target), row_data)
    stats = row.stats
    assert stats.reached is True
    assert row.reason is None
    curve = stats.curve
    assert curve[-1]["heldout_acc"] >= target
    assert all(p["heldout_acc"] < target for p in curve[:-1])
    assert stats.time_to_target_s == curve[-1]["wall_s"]
    assert stats.steps == curve[-1]["step"] < 60


def test_seed_is_reproducible_and_matters(row_data, tiny_run):
    short = dataclasses.replace(TINY, budget=tts.Budget("steps", 20))
    again = train.run_tta(short, row_data).stats.curve[0]
    first = tiny_run.stats.curve[0]
    assert again["train_loss"] == pytest.approx(first["train_loss"], rel=1e-4)
    other = train.run_tta(dataclasses.replace(short, seed=1), row_data).stats.curve[0]
    assert other["train_loss"] != pytest.approx(first["train_loss"], rel=1e-4)


def test_compile_step_is_undone_before_the_clock(row_data):
    """The first timed step starts from the seeded initial weights, not from the compile step's."""
    import tensorflow as tf

    from bench.impls.base import LayerConfig, build_layer

    settings = dataclasses.replace(TINY, budget=tts.Budget("steps", 1), eval_every=1)
    first_loss = train.run_tta(settings, row_data).stats.curve[0]["train_loss"]
    layer = build_layer(LayerConfig("lstm_block_fused", "fused", 28, 32), seed=TINY.seed)
    rng = np.random.default_rng([TINY.seed, 1])
    rng.permutation(4000)  # the batch order drawn for the compile step
    batch = rng.permutation(4000)[:TINY.batch]
    logits = layer(tf.constant(row_data.x_train[batch]))[:, -1, :] @ train._head_init(32, 0)
    expected = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=row_data.y_train[batch], logits=logits)).numpy()
    assert first_loss == pytest.approx(float(expected), rel=1e-5)


def test_huge_learning_rate_is_marked_diverged(row_data):
    settings = dataclasses.replace(TINY, lr=1e4, budget=tts.Budget("steps", 40), eval_every=5)
    row = train.run_tta(settings, row_data)
    stats = row.stats
    assert stats.diverged is True
    assert stats.reached is False
    assert stats.steps == 5  # stopped at the first check
    assert row.reason.startswith("diverged at step 5")
    loss = stats.curve[-1]["train_loss"]
    assert loss is None or loss > train.DIVERGED_LOSS  # NaN and inf are stored as null


def test_time_budget_with_a_fake_clock(row_data):
    ticks = itertools.count()
    settings = dataclasses.replace(TINY, budget=tts.Budget("seconds", 5.0), eval_every=1000)
    row = train.run_tta(settings, row_data, timer=lambda: float(next(ticks)))
    stats = row.stats
    assert stats.reached is False
    assert 1 <= stats.steps <= 5  # each step reads the clock at least once: 1 s per step
    assert stats.train_s >= 5.0
    assert len(stats.curve) == 1
    assert "within 5s" in row.reason


def test_permuted_task_runs_and_records_its_permutation():
    full = data.task_data(data.load_subset(), "permuted")
    small = dataclasses.replace(full, x_train=full.x_train[:64], y_train=full.y_train[:64],
                                x_test=full.x_test[:32], y_test=full.y_test[:32])
    settings = dataclasses.replace(TINY, task="permuted", hidden_size=8, batch=32,
                                   budget=tts.Budget("epochs", 1))
    row = train.run_tta(settings, small)
    assert row.stats.steps == 2
    assert row.settings["seq_len"] == 784
    assert row.settings["permutation_seed"] == data.PERMUTATION_SEED
    assert row.settings["permutation_sha256"] == full.permutation_sha256
    with pytest.raises(ValueError, match="task"):
        train.run_tta(TINY, small)


def test_rows_validate_and_round_trip_through_results(tmp_path, tiny_run):
    doc = results.empty_document(run_id="t", env={}, command="test")
    skipped = train.failed_row(dataclasses.replace(TINY, impl="cudnn_lstm"), "skipped",
                             "cudnn_lstm needs a GPU")
    results.save_run(tmp_path, doc, tta=[tiny_run, skipped])
    loaded = results.read_run(tmp_path)
    assert [r.to_dict() for r in loaded.tta] == [tiny_run.to_dict(), skipped.to_dict()]
    assert json.loads((tmp_path / results.RESULTS_JSON).read_text())["tta"][0]["stats"][
        "curve"] == [dict(p) for p in tiny_run.stats.curve]
    frame = results.tta_frame(loaded.tta)
    assert list(frame["status"]) == ["ok", "skipped"]
    assert (tmp_path / results.TTA_CSV).is_file()


# Seeds summary ----------------------------------------------------------------------------------

def _fake_row(seed, ttt, best, group="row/x/dynamic/cpu/h8-l1/b128", **settings) -> TTARow:
    return TTARow.from_dict({
        "id": f"{group}/seed{seed}", "status": "ok",
        "settings": {"task": "row", "impl": "x", "unroll": "dynamic", "target": 0.9, **settings},
        "stats": {"reached": ttt is not None, "time_to_target_s": ttt, "best_acc": best,
                  "epochs": 2.0, "train_s": 4.0, "diverged": False}})


def test_summary_median_counts_misses_as_never():
    two_of_three = tta_summary.summarize([_fake_row(0, 10.0, 0.91), _fake_row(1, 30.0, 0.92),
                                  _fake_row(2, None, 0.85)])[0]
    assert (two_of_three["seeds"], two_of_three["reached"]) == (3, 2)
    assert two_of_three["ttt_median_s"] == 30.0
    assert (two_of_three["ttt_min_s"], two_of_three["ttt_max_s"]) == (10.0, 30.0)
    assert two_of_three["best_acc_median"] == 0.91
    one_of_three = tta_summary.summarize([_fake_row(0, 10.0, 0.91), _fake_row(1, None, 0.8),
                                  _fake_row(2, None, 0.85)])[0]
    assert one_of_three["ttt_median_s"] is None
    table = tta_summary.format_summary([two_of_three, one_of_three])
    assert "| 2/3 | 30.0 [10.0–30.0] |" in table
    assert "| 1/3 | — [10.0–10.0] |" in table


# Command line -----------------------------------------------------------------------------------

@pytest.fixture
def run_cli(capsys):
    """`rnnbench tta ...` through bench.cli.main, as the console script runs it."""

    def run(*argv):
        code = cli.main(["tta", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_cli_end_to_end(run_cli, tmp_path):
    out_dir = tmp_path / "run"
    code, out, err = run_cli("--impl", "lstm_block_fused", "--hidden", "16", "--budget",
                             "10steps", "--eval-every", "5", "--seeds", "2", "--out",
                             str(out_dir))
    assert code == 0, err
    doc = results.load_run(out_dir)
    assert [r["settings"]["seed"] for r in doc["tta"]] == [0, 1]
    assert (doc["status"], doc["cases_planned"], doc["cases_finished"]) == ("complete", 2, 2)
    assert all(len(r["stats"]["curve"]) == 2 for r in doc["tta"])
    assert "| row | lstm_block_fused/fused | 0.9 | 0/2 |" in out
    assert "held-out acc" in err  # progress lines
    assert (out_dir / results.TTA_CSV).is_file()
    assert doc["command"].startswith("rnnbench tta --task row --impl lstm_block_fused --unroll "
                                     "auto --target 0.9 --budget 10steps --seeds 2")
    code, _, err = run_cli("--impl", "lstm_block_fused", "--out", str(out_dir))
    assert code == 2
    assert "already holds a run" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["--target", "0"], r"argument --target: must be in \(0, 1\], got 0"),
    (["--target", "1.01"], r"argument --target: must be in \(0, 1\], got 1.01"),
    (["--budget", "90"], "expected a number with a unit"),
    (["--impl", "cudnn_lstm"], "cudnn_lstm needs a GPU"),
    (["--impl", "nope"], "unknown implementation 'nope'"),
    (["--unroll", "sideways"], "unknown unroll mode 'sideways'"),
    (["--impl", "lstm_block_fused", "--unroll", "static"], "lstm_block_fused supports unroll"),
    (["--seeds", "0"], "argument --seeds: must be at least 1, got 0"),
    (["--impl", "basic_rnn", "--data", "MISSING"], "missing.npz: no such file"),
    (["--impl", "basic_rnn", "--data", "CORRUPT"], r"corrupt.npz: not a readable \.npz"),
    (["--impl", "basic_rnn", "--batch", "4001"], "--batch 4001: larger than the 4000"),
], ids=lambda v: "_".join(v) if isinstance(v, list) else None)
def test_cli_bad_input_is_one_line_exit_2(run_cli, tmp_path, argv, message):
    (tmp_path / "corrupt.npz").write_bytes(b"\x00" * 100)
    paths = {"MISSING": str(tmp_path / "missing.npz"), "CORRUPT": str(tmp_path / "corrupt.npz")}
    argv = [paths.get(a, a) for a in argv]
    code, out, err = run_cli(*argv, "--out", str(tmp_path / "run"))
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rnnbench tta: error: ")
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "run" / results.RESULTS_JSON).exists()


def test_cli_unknown_task_is_a_usage_error(run_cli):
    code, _, err = run_cli("--task", "column")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("rnnbench tta: error: argument --task: invalid choice: 'column'")


def test_importing_tta_loads_no_tensorflow():
    code = ("import sys, bench.tta.command; bench.tta.settings.parse_budget('5ep'); "
            "sys.exit('tensorflow' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_head_init_is_seeded():
    np.testing.assert_array_equal(train._head_init(8, 0), train._head_init(8, 0))
    assert not np.array_equal(train._head_init(8, 0), train._head_init(8, 1))


# Degenerate held-out data (issue 17) ---------------------------------------------------------

@pytest.mark.parametrize(("settings", "said"), [
    ({"heldout_classes": 1, "heldout_majority": 1.0, "target": 0.9}, "has 1 class"),
    ({"heldout_classes": 10, "heldout_majority": 0.62, "target": 0.5},
     "the target 0.5 is at or below chance level (the commonest class is 62.0 %"),
    ({"heldout_classes": 10, "heldout_majority": 0.9, "target": 0.9}, "at or below chance"),
])
def test_chance_warning_names_why_the_time_is_meaningless(settings, said):
    warning = tta_summary.chance_warning(settings)
    assert said in warning.replace("62.0%", "62.0 %")
    assert "meaningless" in warning
    row = _fake_row(0, 0.0, 1.0, **settings)
    table = tta_summary.format_summary(tta_summary.summarize([row]))
    assert "**meaningless**" in table
    assert f"**Warning**: {warning}." in table


def test_no_chance_warning_for_mnist_as_it_is(row_data):
    info = data.load_mnist(None).describe()
    assert info["heldout_classes"] == 10
    assert info["heldout_majority"] < 0.2
    assert tta_summary.chance_warning({**info, "target": 0.9}) is None
    table = tta_summary.format_summary(tta_summary.summarize([_fake_row(0, 10.0, 0.91)]))
    assert "Warning" not in table


def test_one_class_data_is_flagged_in_terminal_and_report(run_cli, tmp_path):
    mnist = data.load_mnist(None)
    one_class = tmp_path / "one-class.npz"
    np.savez(one_class, x_train=mnist.x_train[:512], y_train=np.full(512, 3, np.uint8),
             x_test=mnist.x_test[:128], y_test=np.full(128, 3, np.uint8))
    out_dir = tmp_path / "run"
    code, out, err = run_cli("--impl", "basic_rnn", "--unroll", "dynamic", "--hidden", "8",
                             "--budget", "4steps", "--eval-every", "2", "--data",
                             str(one_class), "--out", str(out_dir), "-q")
    assert code == 0, err
    assert "rnnbench tta: warning: the held-out set has 1 class" in err
    assert "**meaningless**" in out
    report = (out_dir / "report.md").read_text()
    assert "**Warning**: the held-out set has 1 class" in report
    assert "**meaningless**" in report
