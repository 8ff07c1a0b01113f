"""The history store on both back ends (SQLite file, real PostgreSQL server): one test matrix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import cli
from bench.errors import UserError
from bench.history import schema
from bench.history.ingest import ADDED, KNOWN, REFUSED, add_paths
from bench.history.series import Filters, points_frame
from bench.history.store import open_store
from tests import postgres
from tests.history_data import smoke_cases, write_history, write_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def pg_server():
    """One real PostgreSQL server for the session (skipped with the reason where impossible)."""
    reason = postgres.missing_reason()
    if reason:
        pytest.skip(reason)
    server = postgres.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A fresh, empty store of each back end."""
    if request.param == "sqlite":
        return str(tmp_path / "history.sqlite")
    return request.getfixturevalue("pg_server").new_database()


def _run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_add_is_idempotent_and_keyed_by_content(store_url, tmp_path, capsys):
    runs = write_history(tmp_path / "runs", 4)
    code, out, _ = _run_cli(capsys, "history", "add", tmp_path / "runs", "--store", store_url)
    assert code == 0
    assert "4 added" in out
    with open_store(store_url) as store:
        before = store.frame("SELECT * FROM points ORDER BY series, run_id")
    code, out, _ = _run_cli(capsys, "history", "add", *runs, "--store", store_url)
    assert code == 0
    assert "0 added, 4 already known" in out
    with open_store(store_url) as store:
        after = store.frame("SELECT * FROM points ORDER BY series, run_id")
    assert len(before) == 4 * len(smoke_cases())
    assert before.equals(after)
    # The same run id with different content is refused; the other folders still go in.
    write_run(tmp_path / "changed" / "r001", "r001", commit="0000001c",
              created="2026-11-01T01:00:00Z", seed=7)
    write_run(tmp_path / "changed" / "z-new", "z-new", commit="abc1234",
              created="2026-11-03T00:00:00Z", seed=8)
    code, out, err = _run_cli(capsys, "history", "add", tmp_path / "changed", "--store",
                              store_url)
    assert code == 2
    assert "1 added" in out
    assert "1 refused" in out
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "r001 is already in the store with different content" in lines[0]
    with open_store(store_url) as store:
        assert store.execute("SELECT COUNT(*) FROM runs")[0][0] == 5


def test_bad_folders_refused_one_line_each_good_ones_added(store_url, tmp_path, capsys):
    write_history(tmp_path / "runs", 2)
    bad = tmp_path / "runs" / "broken"
    bad.mkdir()
    (bad / "results.json").write_text('{"schema_version": 2, "kind": "rnnbench-results", ')
    worse = tmp_path / "runs" / "negative"
    write_run(worse, "neg", commit="1234567", created="2026-11-05T00:00:00Z")
    doc = json.loads((worse / "results.json").read_text())
    doc["cases"][0]["stats"]["median_s"] = -1.0
    (worse / "results.json").write_text(json.dumps(doc))
    code, out, err = _run_cli(capsys, "history", "add", tmp_path / "runs", tmp_path / "nowhere",
                              "--store", store_url)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 3, err
    assert any("malformed JSON" in ln for ln in lines)
    assert any("median_s" in ln for ln in lines)
    assert any("nowhere: no such run folder" in ln for ln in lines)
    assert "2 added" in out
    assert "Traceback" not in err


def test_partial_runs_are_marked_and_left_out_by_default(store_url, tmp_path):
    write_history(tmp_path / "runs", 3)
    write_run(tmp_path / "runs" / "cut", "cut", commit="fffffff", partial=True,
              created="2026-11-09T00:00:00Z")
    with open_store(store_url) as store:
        outcomes = add_paths(store, [str(tmp_path / "runs")])
        assert [o.result for o in outcomes] == [ADDED] * 4
        status = dict(store.execute("SELECT run_id, status FROM runs"))
        assert status["cut"] == "partial"
        assert status["r000"] == "complete"
        default = points_frame(store)
        everything = points_frame(store, Filters(include_partial=True))
    assert "cut" not in set(default["run_id"])
    assert "cut" in set(everything["run_id"])


def test_a_point_records_series_commit_time_interval_and_n(store_url, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True,
                   env={**os.environ, "GIT_COMMITTER_DATE": "2026-10-01T12:00:00+02:00"})
    sha = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                         check=True).stdout.strip()
    write_run(tmp_path / "run", "one", commit=sha, created="2026-11-02T00:00:00Z")
    with open_store(store_url) as store:
        add_paths(store, [str(tmp_path / "run")], repo=str(repo))
        frame = points_frame(store)
    row = frame.iloc[0]
    assert row["commit_sha"] == sha
    assert row["commit_time"] == "2026-10-01T10:00:00Z"
    assert row["series"] == f"{row['case_id']}|median_s|{row['machine']}"
    assert row["machine_label"] == "Test CPU 9000, 1 thread"
    assert row["ci_low"] <= row["value"] <= row["ci_high"]
    assert row["n"] == 9
    assert row["peak_gflops"] == pytest.approx(50.0)
    assert row["status"] == "complete"


def test_machines_are_separate_series(store_url, tmp_path):
    write_history(tmp_path / "a", 2, prefix="a")
    write_history(tmp_path / "b", 2, prefix="b", env={"cpu_model": "Other CPU"})
    with open_store(store_url) as store:
        add_paths(store, [str(tmp_path)])
        frame = points_frame(store)
        machines = store.frame("SELECT * FROM machines")
    assert len(machines) == 2
    per_case = frame.groupby("case_id")["series"].nunique()
    assert (per_case == 2).all()


_WRITER = r"""
import sys
from bench.history.store import open_store
from bench.history.ingest import add_paths
with open_store(sys.argv[1]) as store:
    outcomes = add_paths(store, sys.argv[2:])
print(sorted(o.result for o in outcomes))
"""


def test_concurrent_writers_from_several_processes(store_url, tmp_path):
    """Four processes add at once: some runs are theirs alone, all share others."""
    shared = write_history(tmp_path / "shared", 3, prefix="s")
    own = [write_history(tmp_path / f"own{k}", 4, prefix=f"p{k}-") for k in range(4)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, store_url,
                               *map(str, [*shared, *own[k]])],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for k in range(4)]
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[1][-800:] for r in results]
    added = [r[0] for r in results]
    assert all(REFUSED not in line for line in added)
    with open_store(store_url) as store:
        runs = store.execute("SELECT COUNT(*) FROM runs")[0][0]
        points = store.execute("SELECT COUNT(*) FROM points")[0][0]
    assert runs == 3 + 16
    assert points == runs * len(smoke_cases())
    total_added = sum(line.count(ADDED) for line in added)
    total_known = sum(line.count(KNOWN) for line in added)
    assert (total_added, total_known) == (19, 9)


def test_schema_upgrades_step_by_step_and_refuses_newer(store_url, tmp_path):
    with open_store(store_url, upgrade_to=1) as store:
        assert store.version() == 1
        store.execute("INSERT INTO machines VALUES ('m', 'M', '{}', '2026-01-01T00:00:00Z')")
        store.execute("INSERT INTO runs VALUES ('old', 'run', 'h', 'src', 'm', 'abc', NULL, "
                      "'2026-01-01T00:00:00Z', 'complete', NULL, 1, '2026-01-01T00:00:00Z')")
        store.execute("INSERT INTO points VALUES ('c|median_s|m', 'old', 'c', 'median_s', 'm', "
                      "'basic_rnn', 'forward', 'abc', NULL, '2026-01-01T00:00:00Z', 0.5, NULL, "
                      "NULL, 3, 'complete', NULL)")
    with open_store(store_url) as store:
        assert store.version() == schema.SCHEMA_VERSION
        frame = points_frame(store)
        assert frame["value"].tolist() == [0.5]
        assert frame["peak_gflops"].isna().all()
        store.execute("UPDATE history_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(UserError, match="schema_version 99 is newer"):
        open_store(store_url)


def test_unusable_sqlite_paths_are_one_line_errors(tmp_path, capsys):
    not_db = tmp_path / "notes.txt"
    not_db.write_text("hello, not a database\n" * 50)
    for store, message in ((tmp_path, "is a folder"), (not_db, "not a usable history store"),
                           (tmp_path / "no" / "h.sqlite", "does not exist")):
        code, _, err = _run_cli(capsys, "history", "changes", "--store", store)
        assert code == 2
        assert message in err
        assert len(err.strip().splitlines()) == 1


def test_unreachable_postgresql_is_a_one_line_error(tmp_path, capsys):
    pytest.importorskip("psycopg")
    url = f"postgresql://nobody@/x?host={tmp_path}&port=1"
    code, _, err = _run_cli(capsys, "history", "changes", "--store", url)
    assert code == 2
    assert "cannot connect to the history store" in err
    assert len(err.strip().splitlines()) == 1


def test_store_from_environment_variable(tmp_path, capsys, monkeypatch):
    write_history(tmp_path / "runs", 2)
    monkeypatch.setenv("RNNBENCH_HISTORY", str(tmp_path / "env.sqlite"))
    code, out, _ = _run_cli(capsys, "history", "add", tmp_path / "runs")
    assert code == 0
    assert str(tmp_path / "env.sqlite") in out
    assert (tmp_path / "env.sqlite").is_file()


def test_a_database_error_while_adding_is_one_line_and_the_store_unharmed(tmp_path, capsys):
    """A store that cannot be written (here: a trigger that refuses, as a full disk would)."""
    write_history(tmp_path / "runs", 3)
    url = str(tmp_path / "h.sqlite")
    with open_store(url) as store:
        add_paths(store, [str(tmp_path / "runs" / "r000")])
        store.execute("CREATE TRIGGER full BEFORE INSERT ON points BEGIN "
                      "SELECT RAISE(ABORT, 'database or disk is full'); END")
    code, _out, err = _run_cli(capsys, "history", "add", tmp_path / "runs", "--store", url)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert all("database or disk is full" in ln for ln in lines)
    assert "Traceback" not in err
    with open_store(url) as store:  # the refused runs left nothing behind (one transaction)
        assert store.execute("SELECT COUNT(*) FROM runs")[0][0] == 1
        assert store.execute("SELECT COUNT(DISTINCT run_id) FROM points")[0][0] == 1
