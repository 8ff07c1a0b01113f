"""`rnnbench ab` failure modes through the real CLI and real worker processes, plus one real run.

Fast tests use a copy of the package whose worker fakes setup (no TensorFlow) and can be told
through its environment to skip cases or to die at the first measurement.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bench import cli

REPO = Path(__file__).resolve().parents[1]

FAKE_WORKER_PATCH = '''
def _fake_setup(self, msg):
    from bench.cases import Case
    skip = os.environ.get("AB_FAKE_SKIP")
    cases = {}
    for params in msg["cases"]:
        cid = Case.from_params(params).id
        status = "skipped" if skip and skip in cid else "ok"
        cases[cid] = {"status": status, "reason": "fake skip" if status != "ok" else None,
                      "compile_s": 0.0, "code_version": "fake"}
    self.send({"type": "ready", "env": {"python": "fake"}, "cases": cases})


def _fake_measure(self, msg):
    if os.environ.get("AB_FAKE_DIE"):
        print("fake worker: dying on purpose", file=sys.stderr, flush=True)
        for _ in range(20):  # the noise a real worker's death leaves, none of it wanted
            print("W0000 keras warning " + "x" * 60, file=sys.stderr, flush=True)
        if os.environ["AB_FAKE_DIE"] == "kill":
            import signal
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(9)
    self.send({"type": "samples", "id": msg["id"], "samples_s": [1e-3] * int(msg["rounds"])})


Worker.setup = _fake_setup
Worker.measure = _fake_measure

'''


@pytest.fixture(scope="module")
def fake_src(tmp_path_factory) -> Path:
    """A source tree: this package with a worker that fakes setup and measurement."""
    root = tmp_path_factory.mktemp("fake-src")
    shutil.copytree(REPO / "bench", root / "bench",
                    ignore=shutil.ignore_patterns("data", "__pycache__"))
    worker = root / "bench" / "measure" / "ab" / "worker.py"
    text = worker.read_text()
    marker = 'if __name__ == "__main__":'
    assert marker in text
    worker.write_text(text.replace(marker, FAKE_WORKER_PATCH + marker))
    return root


@pytest.fixture
def ab_cli(monkeypatch, capsys):
    """Run `rnnbench ab ...` in-process from the repository root; (code, stdout, stderr)."""
    monkeypatch.chdir(REPO)

    def run(*argv):
        code = cli.main(["ab", *map(str, argv)])
        out = capsys.readouterr()
        return code, out.out, out.err
    return run


SMALL = ("--impl", "basic_rnn", "--unroll", "dynamic", "--blocks", "4", "--rounds", "2")


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("rnnbench ab: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_bad_interpreter_path(ab_cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = ab_cli("--a-python", tmp_path / "nope" / "python", *SMALL, "--out", out)
    assert code == 2
    assert f"side A: {tmp_path / 'nope' / 'python'}: not an executable" in _one_error_line(err)
    assert not out.exists()


def test_interpreter_without_rnnbench(ab_cli, tmp_path, fake_src):
    # -I -S: no PYTHONPATH, no site-packages: an interpreter where rnnbench is not installed
    script = tmp_path / "bare-python"
    script.write_text(f"#!/bin/sh\nexec {shutil.which('python3')} -I -S \"$@\"\n")
    script.chmod(0o755)
    out = tmp_path / "run"
    code, _, err = ab_cli("--a-src", fake_src, "--b-python", script, *SMALL, "--out", out)
    assert code == 2
    line = _one_error_line(err)
    assert f"side B: rnnbench is not importable by {script}; install it there or pass " \
           "--b-src DIR" in line
    assert json.loads((out / "ab.json").read_text())["status"] == "failed"
    assert "No module named" in (out / "worker-b.log").read_text()


def test_unknown_git_ref(ab_cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = ab_cli("--b-src", "no-such-ref-3f9c", *SMALL, "--out", out)
    assert code == 2
    assert "side B: unknown git ref 'no-such-ref-3f9c'" in _one_error_line(err)
    assert not out.exists()


def test_src_dir_without_bench(ab_cli, tmp_path):
    code, _, err = ab_cli("--a-src", tmp_path, *SMALL, "--out", tmp_path / "run")
    assert code == 2
    assert "side A:" in _one_error_line(err)
    assert "no bench/__init__.py" in err


def test_bad_env_item(ab_cli, tmp_path):
    code, _, err = ab_cli("--b-env", "NOEQUALS", *SMALL, "--out", tmp_path / "run")
    assert code == 2
    assert "side B: --b-env 'NOEQUALS' is not KEY=VALUE" in _one_error_line(err)


@pytest.mark.parametrize(("how", "said"), [("1", "exited with code 9"),
                                           ("kill", "was killed by signal 9 (SIGKILL)")])
def test_worker_dying_mid_run(ab_cli, tmp_path, fake_src, how, said):
    out = tmp_path / "run"
    code, _, err = ab_cli("--a-src", fake_src, "--b-src", fake_src, "--b-env",
                          f"AB_FAKE_DIE={how}", *SMALL, "--out", out)
    assert code == 2
    line = _one_error_line(err)
    assert f"side B: worker 1 {said} during measure of basic_rnn/dynamic/" in line
    assert f"its log: {out / 'worker-b.log'}" in line
    assert "keras warning" not in line  # the log holds the rest
    assert len(line.replace(str(out), "")) <= 240
    assert "dying on purpose" in (out / "worker-b.log").read_text()
    doc = json.loads((out / "ab.json").read_text())
    assert doc["status"] == "failed"
    assert doc["sides"]["B"]["hello"]["protocol"] == 1


def test_a_git_ref_older_than_ab_says_so(ab_cli, tmp_path):
    root = subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout.split()[-1]
    out = tmp_path / "run"
    code, _, err = ab_cli("--a-src", root, *SMALL, "--out", out)
    assert code == 2
    line = _one_error_line(err)
    assert f"side A: commit {root[:12]} ({root}) predates `rnnbench ab`" in line
    assert "choose a newer ref" in line
    assert not out.exists()


def test_a_failed_start_up_does_not_block_the_corrected_rerun(ab_cli, tmp_path, fake_src):
    script = tmp_path / "bare-python"
    script.write_text(f"#!/bin/sh\nexec {shutil.which('python3')} -I -S \"$@\"\n")
    script.chmod(0o755)
    out = tmp_path / "run"
    code, _, _ = ab_cli("--a-src", fake_src, "--b-python", script, *SMALL, "--out", out)
    assert code == 2
    assert json.loads((out / "ab.json").read_text())["status"] == "failed"
    code, _, err = ab_cli("--a-src", fake_src, "--b-src", fake_src, *SMALL, "--out", out)
    assert code == 0, err
    assert "held only a failed start-up" in err
    assert json.loads((out / "ab.json").read_text())["status"] == "complete"
    # a folder that measured something is never cleared
    code, _, err = ab_cli("--a-src", fake_src, "--b-src", fake_src, *SMALL, "--out", out)
    assert code == 2
    assert "is not empty" in _one_error_line(err)


@pytest.mark.parametrize("command", ["report", "compare", "check"])
def test_readers_name_an_ab_folder_for_what_it_is(tmp_path, fake_src, ab_cli, capsys, command):
    out = tmp_path / "run"
    assert ab_cli("--a-src", fake_src, "--b-src", fake_src, *SMALL, "--out", out)[0] == 0
    argv = {"report": ["report", out], "compare": ["compare", out, out],
            "check": ["check", "--baseline", out, "--current", out]}[command]
    assert cli.main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{out} is an `rnnbench ab` run folder (complete, 3 cases)" in err
    assert str(out / "report.md") in err
    text = (out / "ab.json").read_text()
    (out / "ab.json").write_text(text[: len(text) // 3])  # truncated: the loader says so
    assert cli.main([str(a) for a in argv]) == 2
    assert "malformed JSON" in capsys.readouterr().err


def test_sides_selecting_different_cases(ab_cli, tmp_path, fake_src):
    out = tmp_path / "run"
    code, _, err = ab_cli("--a-src", fake_src, "--b-src", fake_src,
                          "--b-env", "AB_FAKE_SKIP=/backward", *SMALL, "--out", out)
    assert code == 2
    line = _one_error_line(err)
    assert "case basic_rnn/dynamic/cpu/b16-t10-i8-h32-l1/fp32/backward is skipped on side B " \
           "only (fake skip)" in line
    assert json.loads((out / "ab.json").read_text())["status"] == "failed"


def test_fake_workers_complete_a_run(ab_cli, tmp_path, fake_src):
    """The protocol end to end (hello, setup, measure, exit) without TensorFlow."""
    out = tmp_path / "run"
    code, stdout, _ = ab_cli("--a-src", fake_src, "--b-src", fake_src, *SMALL, "--out", out)
    assert code == 0
    doc = json.loads((out / "ab.json").read_text())
    assert doc["status"] == "complete"
    assert {c["verdict"]["verdict"] for c in doc["cases"]} == {"same"}
    assert stdout.strip().splitlines()[-1].startswith("PASS")


def test_existing_out_folder_is_refused_and_left_alone(ab_cli, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = ab_cli(*SMALL, "--out", out)
    assert code == 2
    assert "is not empty" in _one_error_line(err)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_no_case_selected(ab_cli, tmp_path):
    code, _, err = ab_cli("-k", "nothing-matches-this", "--out", tmp_path / "run")
    assert code == 2
    assert "no case of preset 'smoke' matches" in _one_error_line(err)
    assert not (tmp_path / "run").exists()


def _worktrees() -> list[str]:
    """The repository's worktree folders (not their commits: other checkouts may move on)."""
    out = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=REPO,
                         capture_output=True, text=True, check=False).stdout
    return sorted(ln.split(" ", 1)[1] for ln in out.splitlines() if ln.startswith("worktree "))


@pytest.mark.slow
@pytest.mark.tf
def test_real_aa_run_with_tensorflow_workers(ab_cli, tmp_path):
    """Two real workers (this tree, and HEAD checked out as a git worktree) on two tiny cases."""
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                      check=False).returncode != 0:
        pytest.skip("not in a git checkout")
    before = _worktrees()
    out = tmp_path / "run"
    code, stdout, err = ab_cli("--a-src", REPO, "--b-src", "HEAD", "--impl", "basic_rnn",
                               "--unroll", "dynamic", "--phase", "forward,backward",
                               "--threads", "1", "--blocks", "4", "--rounds", "2", "--out", out)
    assert code in (0, 1), err
    assert _worktrees() == before  # the temporary worktree is gone
    assert sorted(p.name for p in out.iterdir()) == [
        "ab.csv", "ab.json", "figures", "report.html", "report.md", "worker-a-2.log",
        "worker-a.log", "worker-b-2.log", "worker-b.log"]
    doc = json.loads((out / "ab.json").read_text())
    assert doc["status"] == "complete"
    assert doc["sides"]["B"]["src_kind"] == "git"
    assert len(doc["sides"]["B"]["src_sha"]) == 40
    assert doc["sides"]["A"]["env_fingerprint"]["intra_op_threads"] == 1
    assert len(doc["cases"]) == 2
    for case in doc["cases"]:
        assert case["a"]["status"] == case["b"]["status"] == "ok"
        assert len(case["a"]["blocks"]) == len(case["b"]["blocks"]) == 4
        assert all(len(b) == 2 and all(s > 0 for s in b) for b in case["a"]["blocks"])
        assert case["a"]["compile_s"] > 0
        assert case["a"]["kernel"] == "while(MatMul)"  # side A is this tree: it reports one
    # where each worker's set-up went: A's worker (this tree) reports its steps
    assert sorted((w["side"], w["generation"]) for w in doc["setup"]) == [
        ("A", 1), ("A", 2), ("B", 1), ("B", 2)]
    a1 = next(w for w in doc["setup"] if (w["side"], w["generation"]) == ("A", 1))
    assert a1["start"] > 0
    assert a1["first_call"] > 0
    assert a1["wall"] >= a1["total"] >= a1["start"] + a1["first_call"]
    verdicts = [c["verdict"]["verdict"] for c in doc["cases"]]
    assert code == (1 if {"regression", "broken"} & set(verdicts) else 0)
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("FAIL" if code else "PASS")


# the worker protocol ---------------------------------------------------------------------------
def _serve(lines):
    import io

    from bench.measure.ab.worker import serve

    out = io.StringIO()
    code = serve(io.StringIO("".join(json.dumps(x) + "\n" if not isinstance(x, str) else x
                                     for x in lines)), out)
    return code, [json.loads(ln) for ln in out.getvalue().splitlines()]


def test_worker_says_hello_first_and_exits_on_exit_or_eof():
    from bench.measure.ab.worker import PROTOCOL

    code, msgs = _serve([{"cmd": "exit"}])
    assert code == 0
    assert msgs[0]["type"] == "hello"
    assert msgs[0]["protocol"] == PROTOCOL
    assert Path(msgs[0]["bench_path"]) == REPO / "bench"
    assert _serve([]) == (0, msgs)  # stdin EOF: the coordinator is gone


@pytest.mark.parametrize(("line", "reason"), [
    ({"cmd": "dance"}, "unknown command 'dance'"),
    ("not json\n", "protocol error"),
    ([1, 2], "expected a JSON object"),
    ({"cmd": "measure", "id": "x/y", "rounds": 2, "warmup": 0}, "not set up here"),
    ({"cmd": "measure", "id": "x/y"}, "needs id, rounds and warmup"),
])
def test_worker_answers_protocol_errors_with_fatal_and_nonzero_exit(line, reason):
    code, msgs = _serve([line, {"cmd": "exit"}])
    assert code == 1
    assert msgs[-1]["type"] == "fatal"
    assert reason in msgs[-1]["reason"]


DIE_SCRIPT = r"""
import os, signal, sys
from pathlib import Path
from bench.measure.ab.sides import SideSpec, WorkerSide
side = WorkerSide(SideSpec("B", src_dir=sys.argv[1]), Path(sys.argv[2]))
side.start()
print(side.proc.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to see the worker")
def test_worker_dies_with_its_coordinator(tmp_path, fake_src):
    import os
    import sys
    import time

    proc = subprocess.run([sys.executable, "-c", DIE_SCRIPT, str(fake_src),
                           str(tmp_path / "w.log")], capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == -9, proc.stderr
    pid = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 20
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)
