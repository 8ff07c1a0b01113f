"""Results files: schema, atomic save into a new run folder, validated load, tidy DataFrame.

No TensorFlow here: report, compare and check read stored results only.

Format history (`schema_version`):
  1 — first version: `env`, `calibration`, `cases[]` (step time), `tta[]` (time-to-accuracy).
      Optional run-level `status` ("partial" | "complete"), `cases_planned`, `cases_finished`
      (absent in older files: complete). Row keys and value rules: bench.rows.
  2 — every case has a `lengths` parameter ("full" | "ragged"; v1 rows are upgraded to
      "full"). Optional row keys `kernel`, `memory_peak_bytes`, `memory_method` (absent: not
      recorded) and `calibration.devices.<device>.dtypes.<dtype>` with every calibration of
      the run (bench.roofline); files without it are read as fp32 only.
  3 — step-time stats carry `median_lo_s` / `median_hi_s`, the distribution-free 95 % interval
      of the median from order statistics of the rounds (bench.intervals); v2 files get it
      computed from their `samples_s` (none below 6 rounds).
Loaders upgrade older versions step by step (`_UPGRADES`) and reject newer ones.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import roofline, rows
from bench.ab_results import AB_JSON, is_ab_folder, read_ab
from bench.errors import UserError
from bench.intervals import median_interval, relative_halfwidth
from bench.rows import CASE_FACTS, CASE_PARAMS, CaseRow, CaseStats
from bench.storage import (
    RESULTS_JSON,
    atomic_write_text,
    parse_json,
    read_bytes,
    upgrade_document,
)
from bench.tta_rows import TTARow

SCHEMA_VERSION = 3
KIND = "rnnbench-results"
RESULTS_CSV = "results.csv"
TTA_CSV = "tta.csv"
ENV_JSON = "env.json"
PARTIAL, COMPLETE = "partial", "complete"
RUN_STATUSES = (PARTIAL, COMPLETE)



def _v1_to_v2(doc: dict) -> dict:
    """v2 added the `lengths` dimension of a case; every v1 case ran full-length sequences."""
    cases = doc.get("cases")
    for row in cases if isinstance(cases, list) else ():
        params = row.get("case") if isinstance(row, dict) else None
        if isinstance(params, dict):
            params.setdefault("lengths", "full")
    return {**doc, "schema_version": 2}


def _v2_to_v3(doc: dict) -> dict:
    """v3 stores the 95 % interval of each median; older rows get it from their raw rounds."""
    cases = doc.get("cases")
    for row in cases if isinstance(cases, list) else ():
        stats = row.get("stats") if isinstance(row, dict) else None
        samples = stats.get(rows.SAMPLES_S) if isinstance(stats, dict) else None
        if (not isinstance(samples, list) or rows.MEDIAN_LO_S in stats
                or not all(rows.is_time(s) for s in samples)):
            continue  # validation names whatever is wrong with the samples
        interval = median_interval(samples)
        if interval is not None:
            stats[rows.MEDIAN_LO_S], stats[rows.MEDIAN_HI_S] = interval
    return {**doc, "schema_version": 3}


# Upgraders: _UPGRADES[n] turns a version-n document into version n+1.
_UPGRADES: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2, 2: _v2_to_v3}


def utc_now() -> str:
    """The current UTC time as ISO 8601 with a Z suffix, to the second."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id(label: str) -> str:
    """A sortable run id: UTC timestamp plus a label, e.g. `20261122T150102Z-smoke`."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-") or "run"
    return f"{stamp}-{safe}"


def empty_document(*, run_id: str, env: dict, command: str, preset: str | None = None,
                   calibration: dict | None = None, planned: int | None = None) -> dict:
    """A results document with no rows yet.

    A measuring command passes `planned` (rows it means to write): the document then says
    `status: "partial"` with `cases_planned` and `cases_finished` until the command marks it
    complete (`mark_finished`), so an interrupted or crashed run says so on disk.
    """
    doc = {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "run_id": run_id,
        "created_utc": utc_now(),
        "command": command,
        "preset": preset,
        "env": env,
        "calibration": calibration or {},
        "cases": [],
        "tta": [],
    }
    if planned is not None:
        doc.update(status=PARTIAL, cases_planned=planned, cases_finished=0)
    return doc


def mark_finished(doc: dict, finished: int, *, complete: bool) -> None:
    """Record how many planned rows were written, and whether the run ended normally with all."""
    doc["cases_finished"] = finished
    done = complete and finished >= doc.get("cases_planned", finished)
    doc["status"] = COMPLETE if done else PARTIAL


def json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def clean_json(obj: Any) -> Any:
    """Replace NaN/inf floats by None so the JSON stays standard."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: clean_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean_json(v) for v in obj]
    return obj


def save_run(run_dir: str | os.PathLike, doc: dict, *, cases: Sequence[CaseRow] | None = None,
             tta: Sequence[TTARow] | None = None) -> Path:
    """Write env.json, results.csv, tta.csv (if any) and results.json atomically; return the dir.

    A measuring command keeps typed rows and passes them as `cases` / `tta`: they are
    serialised here, in place of the document's own lists. Called again as rows arrive (so
    Ctrl-C keeps finished cases); each write replaces the previous snapshot of the same run as
    a whole file, never a half-written one.
    """
    run_dir = Path(run_dir)
    if cases is not None:
        doc = {**doc, "cases": [row.to_dict() for row in cases]}
    if tta is not None:
        doc = {**doc, "tta": [row.to_dict() for row in tta]}
    doc = clean_json(json.loads(json.dumps(doc, default=json_default)))
    run = check_document(doc, source=str(run_dir / RESULTS_JSON))
    atomic_write_text(run_dir / ENV_JSON, json.dumps(doc["env"], indent=1) + "\n")
    atomic_write_text(run_dir / RESULTS_CSV, cases_frame(run.cases).to_csv(index=False))
    if run.tta:
        atomic_write_text(run_dir / TTA_CSV, tta_frame(run.tta).to_csv(index=False))
    # results.json last: it moves to a new snapshot only once its companions hold it too.
    atomic_write_text(run_dir / RESULTS_JSON, json.dumps(doc, indent=1, sort_keys=False) + "\n")
    return run_dir


def _fail(source: str, what: str) -> UserError:
    return UserError(f"{source}: {what}")


@dataclass(frozen=True)
class Run:
    """A loaded, checked run: the document as stored plus its typed rows."""

    doc: dict
    source: str
    cases: tuple[CaseRow, ...]
    tta: tuple[TTARow, ...]

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.doc["run_id"]

    @property
    def env(self) -> dict:
        """The environment fingerprint."""
        return self.doc["env"]

    @property
    def calibration(self) -> dict:
        """The calibration block (may be empty)."""
        return self.doc["calibration"]

    @property
    def partial(self) -> bool:
        """True when the run was interrupted (`status: partial`); older files are complete."""
        return self.doc.get("status") == PARTIAL

    def progress(self) -> str:
        """`7 of 51 cases finished` when the counts are stored, else ''."""
        planned, done = self.doc.get("cases_planned"), self.doc.get("cases_finished")
        return f"{done} of {planned} cases finished" if planned is not None else ""


def check_document(doc: Any, source: str = "results") -> Run:
    """Check the structure and every value of a current-version document; a Run, or UserError."""
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise _fail(source, f"not an rnnbench results file (no \"kind\": \"{KIND}\")")
    for key, typ in (("schema_version", int), ("run_id", str), ("env", dict),
                     ("cases", list), ("tta", list), ("calibration", dict)):
        if not isinstance(doc.get(key), typ):
            raise _fail(source, f"field {key!r} missing or not a {typ.__name__}")
    where = rows.Where(source, "run")
    if doc.get("status") not in (None, *RUN_STATUSES):
        raise where.fail("status", f"is {doc['status']!r}, not one of {', '.join(RUN_STATUSES)}")
    planned = rows.count(doc.get("cases_planned"), where, "cases_planned")
    finished = rows.count(doc.get("cases_finished"), where, "cases_finished")
    if planned is not None and finished is not None and finished > planned:
        raise where.fail("cases_finished", f"is {finished}, more than cases_planned "
                                           f"({planned})")
    written = len(doc["cases"]) + len(doc["tta"])
    if finished is not None and finished != written:
        raise where.fail("cases_finished", f"is {finished}, but the file holds {written} "
                                           "row(s)")
    roofline.check_calibration(doc["calibration"], source)
    cases = tuple(CaseRow.from_dict(r, source, i) for i, r in enumerate(doc["cases"]))
    tta = tuple(TTARow.from_dict(r, source, i) for i, r in enumerate(doc["tta"]))
    for row in cases:
        rows.check_case_id(row.id, row.case, rows.Where(source, f"case {row.id}"))
    for kind, ids in (("case", [r.id for r in cases]), ("tta run", [r.id for r in tta])):
        twice = rows.first_duplicate(ids)
        if twice is not None:
            raise _fail(source, f"{kind} {twice} appears twice; a run holds each id once")
    return Run(doc=doc, source=source, cases=cases, tta=tta)


def upgrade(doc: dict, source: str = "results") -> dict:
    """Bring a document to SCHEMA_VERSION step by step; reject newer or unknown versions."""
    return upgrade_document(doc, _UPGRADES, SCHEMA_VERSION, source, "results")


def resolve_results_path(path: str | os.PathLike) -> Path:
    """Accept a run folder or a results.json path; raise a UserError if there is none."""
    path = Path(path)
    if not (path / RESULTS_JSON).exists() and is_ab_folder(path):
        path = path / AB_JSON
    if path.name == AB_JSON or path.name.endswith(f"{AB_JSON}.gz"):
        refuse_ab_folder(path)
    if path.is_dir():
        path = path / RESULTS_JSON
    if not path.is_file():
        raise UserError(f"{path}: no such results file (expected a run folder with "
                        f"{RESULTS_JSON})")
    return path


def refuse_ab_folder(ab_file: Path) -> None:
    """The one line for an A/B run given where a run is expected: what it is and where its
    report is (the file is checked through the ab.json loader first)."""
    doc = read_ab(ab_file)
    folder = ab_file.parent
    raise UserError(f"{folder} is an `rnnbench ab` run folder ({doc.status}, {len(doc.cases)} "
                    f"cases), not a run of `rnnbench run` or `tta`: its verdicts are in "
                    f"{folder / 'report.md'} and {folder / AB_JSON}")


def load_run(path: str | os.PathLike) -> dict:
    """Load, upgrade and validate a run (folder or results.json); one-line UserError if bad."""
    return read_run(path).doc


def read_run(path: str | os.PathLike) -> Run:
    """Load, upgrade and check a run (folder or results.json) into typed rows; UserError if bad."""
    file = resolve_results_path(path)
    return parse_run(read_bytes(file), file)


def parse_run(data: bytes, file: Path) -> Run:
    """The run held by `data`, the bytes of the results file `file` (read_run's parse, for a
    caller that needs the bytes too); UserError if bad."""
    source = str(file)
    doc = parse_json(data, file, "results file")
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise _fail(source, f"not an rnnbench results file (no \"kind\": \"{KIND}\")")
    return check_document(upgrade(doc, source), source)


def peak_gflops(calibration: dict, device: str | None, dtype: str = "fp32") -> float | None:
    """Calibrated matmul GFLOP/s for `device` in `dtype` (older documents: fp32, per device or
    at the top level); None when the run holds no usable calibration for them.
    """
    return roofline.peak_gflops(calibration, device, dtype)


def cases_frame(case_rows: Sequence[CaseRow]):
    """One tidy row per step-time case: id, case params, status, reason, stats (samples as JSON)."""
    import pandas as pd

    records = []
    for row in case_rows:
        flat = {"id": row.id, **row.case.params(), **row.case_extra, "status": row.status,
                "reason": row.reason}
        for key in CaseStats.COLUMNS:
            flat[key] = getattr(row.stats, key)
        half = relative_halfwidth(row.stats.median_s, row.stats.median_lo_s, row.stats.median_hi_s)
        flat["median_ci_pct"] = None if half is None else 100.0 * half
        flat[rows.SAMPLES_S] = json.dumps(list(row.stats.samples_s))
        flat[rows.WARNINGS] = "; ".join(row.stats.warnings)
        flat["code_version"] = row.code_version
        flat.update({key: getattr(row, key) for key in CASE_FACTS})
        records.append(flat)
    columns = ["id", *CASE_PARAMS, "status", "reason", *CaseStats.COLUMNS, "median_ci_pct",
               rows.SAMPLES_S, rows.WARNINGS, "code_version", *CASE_FACTS]
    frame = pd.DataFrame(records)
    return frame.reindex(columns=list(dict.fromkeys(columns + list(frame.columns))))


def tta_frame(tta_rows: Sequence[TTARow]):
    """One row per time-to-accuracy run: id, settings, status, reason, summary (no curve)."""
    import pandas as pd

    records = []
    for row in tta_rows:
        flat = {"id": row.id, **row.settings, "status": row.status, "reason": row.reason}
        flat.update({k: v for k, v in row.stats.to_dict().items() if k != "curve"})
        records.append(flat)
    return pd.DataFrame(records)
