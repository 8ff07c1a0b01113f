"""`history add`: load run, tta and ab folders through the project's loaders into the store.

Idempotent: a run is keyed by its run id and the SHA-256 of its document; adding it again
changes nothing, and a different document under a known run id is refused. Each folder is its
own transaction, so a bad folder is refused with one line and the good ones still go in.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bench.ab_results import AB_JSON, parse_ab, resolve_ab_path
from bench.errors import UserError, one_line
from bench.history.abpoints import ab_points
from bench.history.points import COMPLETE, Machine, Point, RunRecord, Source, run_points
from bench.history.schema import MACHINE_COLUMNS, POINT_COLUMNS, RUN_COLUMNS
from bench.history.store import Store
from bench.results import RESULTS_JSON, parse_run, utc_now
from bench.storage import read_bytes

ADDED, KNOWN, REFUSED = "added", "known", "refused"
GZ_SUFFIX = ".json.gz"


@dataclass(frozen=True)
class Outcome:
    """What `history add` did with one folder."""

    path: str
    result: str
    run_id: str | None = None
    kind: str | None = None
    points: int = 0
    message: str = ""


def run_folders(paths: list[str]) -> tuple[list[Path], list[Outcome]]:
    """Run, tta and ab folders under the given paths (a folder of folders is walked)."""
    found: list[Path] = []
    missing: list[Outcome] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file() and path.name in (RESULTS_JSON, AB_JSON):
            path = path.parent
        elif path.is_file() and path.name.endswith(GZ_SUFFIX):
            found.append(path)  # a stored A/B document (raw/*.json.gz of a reference)
            continue
        if not path.is_dir():
            missing.append(Outcome(str(path), REFUSED, message=f"{path}: no such run folder"))
            continue
        here = _walk(path)
        if not here:
            missing.append(Outcome(str(path), REFUSED, message=f"{path}: holds no run, tta or "
                                   f"ab folder ({RESULTS_JSON} or {AB_JSON})"))
        found += here
    return list(dict.fromkeys(found)), missing


def _walk(path: Path) -> list[Path]:
    if (path / RESULTS_JSON).is_file() or (path / AB_JSON).is_file():
        return [path]
    here = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(GZ_SUFFIX))
    return here + [f for sub in sorted(p for p in path.iterdir() if p.is_dir())
                   for f in _walk(sub)]


@lru_cache(maxsize=4096)
def commit_time(sha: str | None, repo: str) -> str | None:
    """The committer time (ISO 8601, UTC) of a commit in the git repository `repo`, if known."""
    if not sha:
        return None
    try:
        out = subprocess.run(["git", "-C", repo, "log", "-1", "--format=%cd",
                              "--date=format-local:%Y-%m-%dT%H:%M:%SZ", sha, "--"],
                             capture_output=True, text=True, timeout=30, check=False,
                             env={"TZ": "UTC", "PATH": "/usr/bin:/bin:/usr/local/bin"})
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def load_folder(folder: Path, repo: str) -> tuple[RunRecord, Machine, list[Point]]:
    """The run record, machine and points of one folder; UserError when it is unusable."""
    if folder.is_dir() and (folder / RESULTS_JSON).is_file():
        data = read_bytes(folder / RESULTS_JSON)  # read once: parsed and hashed
        run = parse_run(data, folder / RESULTS_JSON)
        machine = Machine.from_env(run.env)
        sha = run.env.get("git_commit") or None
        kind = "tta" if run.tta and not run.cases else "run"
        source = Source(run_id=run.run_id, machine=machine, commit_sha=sha,
                        commit_time=commit_time(sha, repo),
                        created_utc=str(run.doc.get("created_utc") or utc_now()),
                        status="partial" if run.partial else COMPLETE)
        points = run_points(run, source)
    else:
        file = resolve_ab_path(folder)
        data = read_bytes(file)
        doc = parse_ab(data, file)
        kind = "ab"
        source, points = ab_points(doc, folder, lambda sha: commit_time(sha, repo))
        machine = source.machine
    record = RunRecord(run_id=source.run_id, kind=kind,
                       content_hash=hashlib.sha256(data).hexdigest(), source=str(folder),
                       machine=machine.machine, commit_sha=source.commit_sha,
                       commit_time=source.commit_time, created_utc=source.created_utc,
                       status=source.status, reference_sha=source.reference_sha,
                       points=len(points), added_utc=utc_now())
    return record, machine, points


def store_run(store: Store, record: RunRecord, machine: Machine, points: list[Point]) -> str:
    """Add one run in one transaction: ADDED, KNOWN (same content), or UserError (changed)."""
    with store.writing():
        known = store.execute("SELECT content_hash, source FROM runs WHERE run_id = ?",
                              (record.run_id,))
        if known:
            if known[0][0] == record.content_hash:
                return KNOWN
            raise UserError(f"{record.source}: run id {record.run_id} is already in the store "
                            f"with different content (added from {known[0][1]}); a run "
                            "folder never changes: give the new run its own id")
        store.execute(_insert("machines", MACHINE_COLUMNS, conflict="(machine)"),
                      (machine.machine, machine.label, machine.identity_json, record.added_utc))
        store.execute(_insert("runs", RUN_COLUMNS), record.row())
        store.executemany(_insert("points", POINT_COLUMNS), [p.row() for p in points])
    return ADDED


def _insert(table: str, columns: tuple[str, ...], conflict: str | None = None) -> str:
    marks = ", ".join("?" for _ in columns)
    tail = f" ON CONFLICT {conflict} DO NOTHING" if conflict else ""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){tail}"


def add_paths(store: Store, paths: list[str], repo: str = ".") -> list[Outcome]:
    """Add every run, tta and ab folder under `paths`; one Outcome per folder."""
    folders, outcomes = run_folders(paths)
    for folder in folders:
        try:
            record, machine, points = load_folder(folder, repo)
            result = store_run(store, record, machine, points)
        except UserError as exc:
            outcomes.append(Outcome(str(folder), REFUSED, message=str(exc)))
        except OSError as exc:
            outcomes.append(Outcome(str(folder), REFUSED, message=f"{folder}: {one_line(exc)}"))
        else:
            outcomes.append(Outcome(str(folder), result, record.run_id, record.kind,
                                    record.points if result == ADDED else 0))
    return outcomes
