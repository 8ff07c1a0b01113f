"""Test helper: synthetic run folders for the history tests (seeded; known steps and creeps)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from bench.cases import preset
from bench.results import empty_document, mark_finished, save_run

ENV = {"hostname": "h1", "cpu_model": "Test CPU 9000", "cpu_count": 2, "intra_op_threads": 1,
       "inter_op_threads": 1, "gpus": [], "tensorflow": "2.21.0", "python": "3.11.7"}
ROUNDS = 9


def smoke_cases(impls=("basic_rnn", "keras_lstm")):
    """A few CPU smoke cases of the given implementations."""
    return [c for c in preset("smoke") if c.impl in impls and c.device == "cpu"]


def write_run(folder: Path, run_id: str, *, commit: str, created: str, factors: dict | None = None,
              seed: int = 0, env: dict | None = None, partial: bool = False,
              cases=None, sd: float = 0.01) -> Path:
    """One run folder: each case's median is 1 ms × its factor (default 1) × seeded noise."""
    rng = np.random.default_rng(seed)
    doc = empty_document(run_id=run_id, env={**ENV, **(env or {}), "git_commit": commit},
                         command="rnnbench run --preset smoke", preset="smoke",
                         calibration={"matmul_gflops": 50.0, "samples_s": [0.01] * 3},
                         planned=len(cases or smoke_cases()))
    doc["created_utc"] = created
    for case in cases or smoke_cases():
        level = 1e-3 * (factors or {}).get(case.impl, 1.0) * math.exp(rng.normal(0, sd))
        samples = level * np.exp(rng.normal(0, 0.01, ROUNDS))
        doc["cases"].append({"id": case.id, "case": case.params(), "status": "ok",
                             "reason": None, "code_version": "v1",
                             "stats": {"samples_s": samples.tolist(),
                                       "median_s": float(np.median(samples)),
                                       "rounds": ROUNDS, "warnings": []}})
    mark_finished(doc, len(doc["cases"]), complete=not partial)
    folder.mkdir(parents=True, exist_ok=True)
    return save_run(folder, doc)


def write_history(root: Path, n: int, *, step_at: int | None = None, step: float = 1.0,
                  impl: str = "keras_lstm", env: dict | None = None, prefix: str = "r",
                  sd: float = 0.01) -> list[Path]:
    """n runs of n commits (c000…), one hour apart; `impl` slower by `step` from `step_at` on."""
    out = []
    for i in range(n):
        factors = {impl: step} if step_at is not None and i >= step_at else {}
        out.append(write_run(root / f"{prefix}{i:03d}", f"{prefix}{i:03d}",
                             commit=f"{i:07x}c", created=f"2026-11-{1 + i // 24:02d}T"
                                                         f"{i % 24:02d}:00:00Z",
                             factors=factors, seed=1000 + i, env=env, sd=sd))
    return out


def write_ab_history(root: Path, make_doc, n: int, *, step_at: int, step: float,
                     impl: str = "keras_lstm", reference: str = "a" * 40,
                     cpu: str = "Test CPU") -> list[Path]:
    """n A/B folders over commits (`00bbb…`, `01bbb…`) against one reference; `impl`'s ratio
    is `step` from `step_at` on. `make_doc` is the conftest `ab_doc` factory."""
    out = []
    for i in range(n):
        doc = make_doc({"keras_lstm": "same", "basic_rnn": "same", "gru": "same"})
        doc["run_id"] = f"ab-{cpu[:4].lower()}-{i:02d}"
        doc["created_utc"] = f"2026-11-02T{i:02d}:00:00Z"
        env = {"cpu_model": cpu, "intra_op_threads": 1}
        doc["sides"]["A"].update(src_sha=reference, env_fingerprint=env)
        doc["sides"]["B"].update(src_sha=f"{i:02d}" + "b" * 38, env_fingerprint=env)
        for case in doc["cases"]:
            slow = case["case"]["impl"] == impl and i >= step_at
            ratio = (step if slow else 1.0) * math.exp(0.01 * ((i * 7) % 5 - 2))
            case["verdict"].update(ratio=ratio, ci_low=ratio * 0.97, ci_high=ratio * 1.03)
        folder = root / doc["run_id"]
        folder.mkdir(parents=True)
        (folder / "ab.json").write_text(json.dumps(doc))
        out.append(folder)
    return out
