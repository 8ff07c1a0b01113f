"""A full disk (and any OSError while writing) is one line naming the path, exit 2; what was
saved stays loadable and says honestly how much it holds; no half-written or temp file stays.

Where the test runs as root it mounts a real 40 KiB tmpfs; elsewhere the disk fills through an
injected OSError (ENOSPC) from the write path after a byte budget.
"""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from bench import cli, results, storage
from bench.errors import UserError

BUDGET = 40 * 1024


class Disk:
    """A folder with about BUDGET bytes of room: a real tmpfs, or an injected ENOSPC."""

    def __init__(self, path, monkeypatch):
        self.path, self.kind = path, "injected"
        path.mkdir()
        if os.geteuid() == 0 and subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={BUDGET // 1024}k", "tmpfs", str(path)],
                capture_output=True, check=False).returncode == 0:
            self.kind = "tmpfs"
            return
        self.used = used = {"bytes": 0}
        real_fsync = os.fsync

        def fsync(fd):
            used["bytes"] += os.fstat(fd).st_size
            if used["bytes"] > BUDGET:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real_fsync(fd)
        monkeypatch.setattr(storage.os, "fsync", fsync)

    def fill(self, leave: int) -> None:
        """Use up the disk but `leave` bytes."""
        if self.kind == "tmpfs":
            free = os.statvfs(self.path).f_bavail * os.statvfs(self.path).f_frsize
            (self.path / "filler").write_bytes(b"\0" * max(free - leave, 0))
        else:
            self.used["bytes"] = BUDGET - leave

    def close(self):
        if self.kind == "tmpfs":
            subprocess.run(["umount", str(self.path)], check=False)


@pytest.fixture
def disk(tmp_path, monkeypatch):
    """A small disk at tmp_path/disk (unmounted at teardown)."""
    d = Disk(tmp_path / "disk", monkeypatch)
    yield d
    d.close()


def _temp_files(folder):
    return [p.name for p in folder.rglob(".*.tmp")]


def _doc(n_rows: int) -> dict:
    doc = results.empty_document(run_id="full", env={"hostname": "h"}, command="test",
                                 planned=400)
    case = {"impl": "basic_rnn", "unroll": "static", "device": "cpu", "batch": 16,
            "seq_len": 10, "input_size": 8, "hidden_size": 32, "num_layers": 1,
            "bidirectional": False, "dtype": "fp32", "xla": False, "phase": "forward",
            "lengths": "full"}
    for i in range(n_rows):
        params = {**case, "batch": 1 + i}
        cid = f"basic_rnn/static/cpu/b{1 + i}-t10-i8-h32-l1/fp32/forward"
        doc["cases"].append({"id": cid, "case": params, "status": "ok", "reason": None,
                             "stats": {"samples_s": [1e-3] * 20, "median_s": 1e-3}})
    results.mark_finished(doc, n_rows, complete=False)
    return doc


def test_snapshots_until_the_disk_is_full_then_one_line_and_the_last_one_intact(disk):
    run = disk.path / "r"
    run.mkdir()
    saved, error = 0, None
    for n in range(1, 400):
        try:
            results.save_run(run, _doc(n))
        except UserError as exc:
            error = exc
            break
        saved = n
    text = str(error)
    assert "\n" not in text
    assert text.startswith(f"cannot write {run}/")
    assert "No space left on device (errno 28)" in text
    assert isinstance(error, storage.WriteError)
    assert saved > 0
    loaded = results.read_run(run)
    assert len(loaded.cases) == saved  # the last whole snapshot, nothing half-written
    assert loaded.doc["cases_finished"] == saved
    assert loaded.partial
    assert _temp_files(disk.path) == []


@pytest.mark.parametrize("what", ["read-only folder", "vanished folder"])
def test_any_oserror_while_writing_is_one_line_naming_the_path(tmp_path, monkeypatch, what):
    target = tmp_path / "gone" / "results.json"
    if what == "read-only folder":
        target.parent.mkdir()
        monkeypatch.setattr(storage.tempfile, "mkstemp", lambda **kw: (_ for _ in ()).throw(
            OSError(errno.EROFS, os.strerror(errno.EROFS))))
    with pytest.raises(storage.WriteError) as err:
        storage.atomic_write_text(target, "{}")
    assert str(err.value).startswith(f"cannot write {target}: ")
    assert "\n" not in str(err.value)
    assert not target.exists()


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize("rounds", [3, 200], ids=["report-does-not-fit", "results-do-not-fit"])
def test_run_into_a_full_disk_is_exit_2_with_what_was_saved(disk, capsys, rounds):
    out = disk.path / "r"
    code = cli.main(["run", "--impl", "basic_rnn", "--phase", "forward", "--rounds",
                     str(rounds), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("rnnbench run: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert "No space left on device" in lines[0]
    assert len(lines[0]) < 400
    doc = results.read_run(out).doc
    assert doc["cases_finished"] == len(doc["cases"])
    if "report" in lines[0]:
        assert doc["status"] == "complete"
    else:
        assert doc["status"] == "partial"
        assert f"{len(doc['cases'])} of 2 case(s) are saved" in lines[0]
    assert _temp_files(disk.path) == []


@pytest.mark.tf
def test_tta_into_a_full_disk_is_exit_2_with_what_was_saved(disk, monkeypatch, capsys):
    from bench.tta import command

    monkeypatch.setattr(command, "run_tta", lambda settings, data, **kw: command.failed_row(
        settings, "ok", None))
    out = disk.path / "r"
    disk.fill(leave=28 * 1024)
    code = cli.main(["tta", "--impl", "basic_rnn", "--seeds", "40", "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 2, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("rnnbench tta: error: cannot write ")
    assert "No space left on device" in line
    doc = results.read_run(out).doc
    assert doc["status"] == "partial"
    assert doc["cases_finished"] == len(doc["tta"])
    assert f"{len(doc['tta'])} of 40 run(s) are saved" in line
    assert _temp_files(disk.path) == []


def _no_space(monkeypatch):
    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(storage.os, "fsync", fsync)


@pytest.mark.parametrize("command", ["report", "compare"])
def test_readers_writing_into_a_full_disk_say_so_in_one_line(tmp_path, monkeypatch, capsys,
                                                            command):
    import shutil

    fixtures = os.path.join(os.path.dirname(__file__), "fixtures")
    for name in ("run_a", "run_b"):
        shutil.copytree(os.path.join(fixtures, name), tmp_path / name)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    _no_space(monkeypatch)
    argv = {"report": ["report", tmp_path / "run_a", "--no-figures"],
            "compare": ["compare", tmp_path / "run_a", tmp_path / "run_b", "--cross-machine",
                        "--out", tmp_path / "cmp"]}[command]
    code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1
    assert "No space left on device" in err
    assert "Traceback" not in err
    assert list(tmp_path.rglob(".*.tmp")) == []
    after = sorted(p.name for p in tmp_path.rglob("*"))
    assert set(after) - set(before) <= {"cmp", "figures"}  # at most the empty folders made
