"""What the measuring commands (run, tta, verify) promise on bad input, one row per input.

Every row: exit 2, one line on stderr that names the problem, and nothing written or changed
in the working folder (a snapshot of it, names, bytes and modes, is compared). Most rows fail
before TensorFlow is imported; the rows marked `tf` need it to know what the machine has.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import cases, cli, results, storage

_ROOT = Path(__file__).resolve().parents[1]


def _gpu_visible() -> bool:
    from bench.impls.devices import visible_gpus

    return bool(visible_gpus())


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file and folder under `folder`: its bytes (None for folders) and mode."""
    out = {}
    for path in sorted(folder.rglob("*")):
        data = path.read_bytes() if path.is_file() else None
        out[str(path.relative_to(folder))] = (data, path.stat().st_mode)
    return out


# Set-ups: each prepares tmp_path (the working folder) and returns nothing.
def _nothing(tmp: Path) -> None:
    pass


def _user_files(tmp: Path) -> None:
    (tmp / "out").mkdir()
    (tmp / "out" / "report.md").write_text("my own notes\n")
    (tmp / "out" / "results.csv").write_text("a,b\n1,2\n")


def _finished_run(tmp: Path) -> None:
    (tmp / "out").mkdir()
    (tmp / "out" / results.RESULTS_JSON).write_text('{"precious": true}')


def _taken_by_another_process(tmp: Path) -> None:
    (tmp / "out").mkdir()  # the lock of a live process: this test's own
    (tmp / "out" / storage.RUN_LOCK).write_text(f"{os.getpid()} 20260101T000000Z-smoke\n")


def _left_by_a_killed_process(tmp: Path) -> None:
    (tmp / "out").mkdir()  # a pid far above pid_max: no such process
    (tmp / "out" / storage.RUN_LOCK).write_text("999999999 20260101T000000Z-smoke\n")


def _a_file_in_the_way(tmp: Path) -> None:
    (tmp / "blocker").write_text("a file, not a folder\n")


def _corrupt_mnist(tmp: Path) -> None:
    (tmp / "corrupt.npz").write_bytes(b"\x00" * 100)


_AB_EXAMPLE = _ROOT / "reports" / "reference" / "ab-smoke-2core-epyc-tf2.21-90pairs" / \
    "example-aa-01"


def _a_run(tmp: Path) -> None:
    import shutil

    shutil.copytree(_ROOT / "tests" / "fixtures" / "run_a", tmp / "runA")


def _an_ab_folder(tmp: Path) -> None:
    import shutil

    shutil.copytree(_AB_EXAMPLE, tmp / "ab")


def _a_truncated_ab_folder(tmp: Path) -> None:
    _an_ab_folder(tmp)
    text = (tmp / "ab" / "ab.json").read_text()
    (tmp / "ab" / "ab.json").write_text(text[: len(text) // 2])


def _a_deeply_nested_run(tmp: Path) -> None:
    _a_run(tmp)
    file = tmp / "runA" / results.RESULTS_JSON
    text = file.read_text().replace('"command": ', '"command": ' + "[" * 100_000
                                    + "]" * 100_000 + ', "x": ', 1)
    file.write_text(text)


def _a_history_store(tmp: Path) -> None:
    _a_run(tmp)
    assert cli.main(["history", "add", str(tmp / "runA"), "--store", str(tmp / "h.sqlite")]) == 0


# (id, argv, set-up, message regex, marks). OUT is tmp_path/out; TMP is tmp_path.
ROWS = [
    # issue 9: inputs that used to lose data or mislead
    ("run: --out at a folder holding the user's own files", ["run", "--out", "OUT"],
     _user_files, r"out is not empty; a run never writes into a folder of other files", ()),
    ("run: --out at a folder another process is writing", ["run", "--out", "OUT"],
     _taken_by_another_process, r"out is being written by another rnnbench process", ()),
    ("run: --out at a folder whose run was killed", ["run", "--out", "OUT"],
     _left_by_a_killed_process, r"holds the lock of rnnbench process 999999999, which is no "
     r"longer running", ()),
    ("run: --out at a finished run", ["run", "--out", "OUT"], _finished_run,
     r"out already holds a run \(results.json\); results are never overwritten", ()),
    ("run: --preset gpu without a GPU", ["run", "--preset", "gpu", "--out", "OUT"], _nothing,
     rf"nothing to measure: all {len(cases.preset('gpu'))} cases need a GPU; TensorFlow sees "
     "none", ("tf", "cpu-only")),
    ("run: --impl cudnn_lstm without a GPU", ["run", "--impl", "cudnn_lstm", "--out", "OUT"],
     _nothing, r"nothing to measure: all 3 cases need a GPU: cudnn_lstm has no CPU kernel",
     ("tf",)),
    ("run: static unroll on a fused implementation",
     ["run", "--impl", "lstm_block_fused", "--unroll", "static", "--out", "OUT"], _nothing,
     r"lstm_block_fused supports only unroll fused$", ()),
    ("run: --device gpu with the smoke preset", ["run", "--device", "gpu", "--out", "OUT"],
     _nothing, r"the smoke preset has no gpu cases .*; use --preset gpu$", ()),
    ("run: a phase the scaling preset lacks",
     ["run", "--preset", "scaling", "--phase", "forward", "--out", "OUT"], _nothing,
     r"the scaling preset has no forward cases \(it has backward\)", ()),
    ("run: -k matching no case id", ["run", "-k", "no-such-case", "--out", "OUT"], _nothing,
     r"no case id contains or matches -k 'no-such-case'", ()),
    # bad input the commands already handled
    ("run: unknown implementation", ["run", "--impl", "lstmx", "--out", "OUT"], _nothing,
     r"unknown implementation 'lstmx'", ()),
    ("run: unknown preset", ["run", "--preset", "huge", "--out", "OUT"], _nothing,
     r"unknown preset 'huge'; valid: smoke", ()),
    ("run: unknown phase", ["run", "--phase", "inference", "--out", "OUT"], _nothing,
     r"unknown phase 'inference'", ()),
    ("run: --threads 0", ["run", "--threads", "0", "--out", "OUT"], _nothing,
     r"argument --threads: must be at least 1, got 0", ()),
    ("run: --rounds 0", ["run", "--rounds", "0", "--out", "OUT"], _nothing,
     r"argument --rounds: must be at least 1, got 0", ()),
    ("run: --max-time -1", ["run", "--max-time", "-1", "--out", "OUT"], _nothing,
     r"argument --max-time: must be positive", ()),
    ("run: --warmup-time -0.1", ["run", "--warmup-time", "-0.1", "--out", "OUT"], _nothing,
     r"argument --warmup-time: must be 0 or more", ()),
    ("run: --out under a file (unwritable)", ["run", "--impl", "basic_rnn", "--out",
                                              "TMP/blocker/run"], _a_file_in_the_way,
     r"cannot write to .*blocker/run", ()),
    ("tta: --out at a folder holding the user's own files",
     ["tta", "--impl", "basic_rnn", "--out", "OUT"], _user_files, r"out is not empty", ()),
    ("tta: static unroll on a fused implementation",
     ["tta", "--impl", "lstm_block_fused", "--unroll", "static", "--out", "OUT"], _nothing,
     r"lstm_block_fused supports unroll fused; none of static given", ()),
    ("tta: unknown implementation", ["tta", "--impl", "nope", "--out", "OUT"], _nothing,
     r"unknown implementation 'nope'", ()),
    ("tta: budget without a unit", ["tta", "--budget", "90", "--out", "OUT"], _nothing,
     r"--budget '90': expected a number with a unit", ()),
    # issue 17: readers and check
    ("check: the same run on both sides", ["check", "--baseline", "TMP/runA", "--current",
                                           "TMP/runA"], _a_run,
     r"runA/results.json and .*runA/results.json are the same run .* on both sides", ()),
    ("report: an ab run folder", ["report", "TMP/ab"], _an_ab_folder,
     r"ab is an `rnnbench ab` run folder \(complete, 51 cases\), not a run of", ()),
    ("compare: an ab run folder", ["compare", "TMP/ab", "TMP/ab"], _an_ab_folder,
     r"ab is an `rnnbench ab` run folder", ()),
    ("report: a truncated ab.json", ["report", "TMP/ab"], _a_truncated_ab_folder,
     r"ab/ab.json: malformed JSON", ()),
    ("report: deeply nested results.json", ["report", "TMP/runA"], _a_deeply_nested_run,
     r"runA/results.json: JSON nested too deeply", ()),
    # issue 17: message rows
    ("tta: negative budget", ["tta", "--budget", "-5s", "--out", "OUT"], _nothing,
     r"--budget '-5s': must be a positive, finite number of seconds$", ()),
    ("tta: budget beyond a float", ["tta", "--budget", "1e999ep", "--out", "OUT"], _nothing,
     r"--budget '1e999ep': must be a positive, finite number of epochs$", ()),
    ("tta: budget in scientific notation is read as a number",
     ["tta", "--budget", "1e3steps", "--impl", "nope", "--out", "OUT"], _nothing,
     r"unknown implementation 'nope'", ()),
    ("tta: --seeds 0", ["tta", "--seeds", "0", "--out", "OUT"], _nothing,
     r"argument --seeds: must be at least 1, got 0 \(see rnnbench tta --help\)$", ()),
    ("tta: missing MNIST file", ["tta", "--impl", "basic_rnn", "--data", "TMP/missing.npz",
                                 "--out", "OUT"], _nothing, r"missing.npz: no such file", ()),
    ("tta: corrupt MNIST file", ["tta", "--impl", "basic_rnn", "--data", "TMP/corrupt.npz",
                                 "--out", "OUT"], _corrupt_mnist,
     r"corrupt.npz: not a readable \.npz", ()),
    ("tta: cudnn_lstm without a GPU", ["tta", "--impl", "cudnn_lstm", "--out", "OUT"],
     _nothing, r"cudnn_lstm needs a GPU", ()),
    ("verify: unknown implementation", ["verify", "--impl", "lstmx"], _nothing,
     r"unknown implementation 'lstmx'", ()),
    # issue 16: numbers are checked by the parser (`argument --FLAG:`), before any work
    *((f"tta: {flag} {value}", ["tta", "--impl", "basic_rnn", flag, value, "--out", "OUT"],
       _nothing, rf"argument {flag}: {message} \(see rnnbench tta --help\)$", ())
      for flag, value, message in [
          ("--target", "1.5", r"must be in \(0, 1\], got 1.5"),
          ("--target", "-0.5", r"must be in \(0, 1\], got -0.5"),
          ("--target", "nan", "'nan' is not a finite number"),
          ("--seeds", "two", "'two' is not an integer"),
          ("--seeds", "-1", "must be at least 1, got -1"),
          ("--lr", "0", "must be positive, got 0"),
          ("--lr", "inf", "'inf' is not a finite number"),
          ("--batch", "0", "must be at least 1, got 0"),
          ("--batch", "12.5", "'12.5' is not an integer"),
          ("--hidden", "-4", "must be at least 1, got -4"),
          ("--layers", "0", "must be at least 1, got 0"),
          ("--eval-every", "0", "must be at least 1, got 0"),
          ("--clip", "-1", "must be positive, got -1"),
      ]),
    *((f"verify: --tolerance {value}", ["verify", "--impl", "basic_rnn", "--tolerance", value],
       _nothing, rf"argument --tolerance: {message} \(see rnnbench verify --help\)$", ())
      for value, message in [("-0.1", "must be positive, got -0.1"),
                             ("0", "must be positive, got 0"),
                             ("nan", "'nan' is not a finite number"),
                             ("1e-3x", "'1e-3x' is not a number")]),
    # issue 16: the history filters take the one --impl grammar, and its unknown-name error
    ("history series: an unknown implementation in a comma list",
     ["history", "series", "--store", "TMP/h.sqlite", "--impl", "basic_lstm,nope"],
     _a_history_store, r"^rnnbench history: error: unknown implementation 'nope'; valid: ", ()),
    ("history changes: an unknown implementation, repeated flag",
     ["history", "changes", "--store", "TMP/h.sqlite", "--impl", "basic_lstm", "--impl",
      "lstmx"], _a_history_store, r"unknown implementation 'lstmx'; valid: ", ()),
    ("history changes: --impl without a name",
     ["history", "changes", "--store", "TMP/h.sqlite", "--impl"], _a_history_store,
     r"^rnnbench history changes: error: argument --impl: expected at least one argument", ()),
    ("history series: an unknown phase in a comma list",
     ["history", "series", "--store", "TMP/h.sqlite", "--phase", "forward,inference"],
     _a_history_store, r"^rnnbench history: error: unknown phase 'inference'; valid: forward, ",
     ()),
    ("history changes: an unknown metric",
     ["history", "changes", "--store", "TMP/h.sqlite", "--metric", "mean_s"],
     _a_history_store, r"unknown metric 'mean_s'; valid: median_s, ", ()),
    ("publish: an unknown implementation", ["publish", "--store", "TMP/h.sqlite", "--out", "OUT",
                                            "--impl", "nope"], _a_history_store,
     r"^rnnbench publish: error: unknown implementation 'nope'; valid: ", ()),
]


def _param(row):
    ident, argv, setup, message, marks = row
    pytest_marks = [pytest.mark.tf] if "tf" in marks else []
    return pytest.param(argv, setup, message, "cpu-only" in marks, id=ident, marks=pytest_marks)


@pytest.mark.parametrize(("argv", "setup", "message", "cpu_only"), [_param(r) for r in ROWS])
def test_bad_input(argv, setup, message, cpu_only, tmp_path, monkeypatch, capsys):
    if cpu_only and _gpu_visible():
        pytest.skip("this machine has a GPU")
    setup(tmp_path)
    monkeypatch.chdir(tmp_path)  # a default reports/ folder would land here
    argv = [a.replace("OUT", str(tmp_path / "out")).replace("TMP", str(tmp_path))
            for a in argv]
    before = snapshot(tmp_path)
    code = cli.main(argv)
    _, err = capsys.readouterr()
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.match(rf"rnnbench {argv[0]}( {re.escape(argv[1])})?: error: ", lines[0]), lines[0]
    assert re.search(message, lines[0]), lines[0]
    assert snapshot(tmp_path) == before


# Two processes aimed at the same folder: exactly one gets it, however close they start.
_RACER = r"""
import os, sys, time
from bench.errors import UserError
from bench.storage import make_run_dir
go = sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.0005)
try:
    make_run_dir(sys.argv[1], "race")
except UserError as exc:
    print(exc)
    sys.exit(2)
print("took it", flush=True)
time.sleep(1.0)  # hold the folder while the others try
"""


@pytest.mark.parametrize("existing", [False, True], ids=["new folder", "existing empty folder"])
def test_racing_processes_get_one_folder(tmp_path, existing):
    env = {**os.environ, "PYTHONPATH": str(_ROOT)}
    for attempt in range(3):
        target = tmp_path / f"run{attempt}"
        if existing:
            target.mkdir()
        go = tmp_path / f"go{attempt}"
        procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(target), str(go)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env) for _ in range(4)]
        time.sleep(0.5)  # all four waiting at the barrier
        go.touch()
        outcomes = [(p.wait(timeout=60), p.communicate()) for p in procs]
        winners = [o for o in outcomes if o[0] == 0]
        losers = [o for o in outcomes if o[0] != 0]
        assert len(winners) == 1, outcomes
        for code, (stdout, _) in losers:
            assert code == 2
            assert len(stdout.strip().splitlines()) == 1
            assert "another rnnbench process" in stdout or "is not empty" in stdout
        assert not (target / storage.RUN_LOCK).exists()  # released when the winner exited


def test_a_folder_of_this_process_is_accepted_again(tmp_path):
    first = storage.make_run_dir(tmp_path / "mine", "a")
    assert storage.make_run_dir(tmp_path / "mine", "a") == first


def test_output_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        storage.atomic_write_text(tmp_path / "x.txt", "hello\n")
    finally:
        os.umask(old)
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o640
    storage.atomic_write_text(tmp_path / "y.txt", "hello\n")
    assert (tmp_path / "y.txt").stat().st_mode & 0o777 == 0o666 & ~old


# Interrupted runs: the folder keeps the finished rows and says the run is partial.
@pytest.mark.tf
@pytest.mark.slow
def test_interrupted_run_is_marked_partial(tmp_path, monkeypatch, capsys):
    from bench.measure import phases

    def interrupted(tf, layer, x, lengths=None):
        def fn():
            raise KeyboardInterrupt
        return fn

    monkeypatch.setitem(phases.BUILDERS, "train_step", interrupted)
    out = tmp_path / "run"
    assert cli.main(["run", "--impl", "basic_rnn", "--unroll", "dynamic", "--rounds", "10",
                     "--out", str(out)]) == 130
    doc = json.loads((out / results.RESULTS_JSON).read_text())
    assert (doc["status"], doc["cases_planned"], doc["cases_finished"]) == ("partial", 3, 2)
    assert [(r["id"].rsplit("/", 1)[1], r["status"]) for r in doc["cases"]] == [
        ("forward", "ok"), ("backward", "ok")]  # what finished before Ctrl-C is kept
    assert "marked partial" in capsys.readouterr().err


@pytest.mark.tf
def test_interrupted_tta_is_marked_partial(tmp_path, monkeypatch):
    from bench.tta import command

    calls = []

    def fake_run(settings, data, **kwargs):
        calls.append(settings.seed)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return command.failed_row(settings, "ok", None)

    monkeypatch.setattr(command, "run_tta", fake_run)
    out = tmp_path / "run"
    assert cli.main(["tta", "--impl", "basic_rnn", "--seeds", "3", "--out", str(out)]) == 130
    doc = json.loads((out / results.RESULTS_JSON).read_text())
    assert (doc["status"], doc["cases_planned"], doc["cases_finished"]) == ("partial", 3, 1)


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize("argv", [["list", "--tf"], ["verify", "--impl", "basic_rnn"]],
                         ids=["list --tf", "verify --impl basic_rnn"])
def test_no_cuda_start_up_lines_on_the_terminal(argv):
    proc = subprocess.run([sys.executable, "-m", "bench", *argv], capture_output=True,
                          text=True, timeout=300, check=False,
                          env={**os.environ, "PYTHONPATH": str(_ROOT)})
    assert proc.returncode == 0, proc.stderr
    for noise in ("cuInit", "E0000", "cudart_stub", "absl::InitializeLog"):
        assert noise not in proc.stderr
