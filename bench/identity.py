"""Which environment fields make two runs comparable: the identity policy of compare and check.

Software fields (versions, the source commit) are what a comparison is usually *about*: they
are shown as "what changed", never a reason to refuse. Hardware fields (CPU, GPU, threads) make
absolute times incomparable: compare and check refuse them unless told the difference is wanted
(`--cross-machine`, `--normalize`). Per-case identity (device, dtype, xla) is part of the case id,
so joining on the id already keeps those apart.
"""

from __future__ import annotations

from collections.abc import Sequence

SOFTWARE_FIELDS = ("tensorflow", "keras", "cuda", "cudnn", "python", "numpy", "git_commit")
HARDWARE_FIELDS = ("cpu_model", "cpu_features", "gpu", "intra_op_threads", "inter_op_threads")
# Fields that older runs did not record: a run without one is not compared on it (unknown is
# not a difference), so older runs still compare with each other and with newer ones.
RECORDED_LATER = ("cpu_features",)


def identity(env: dict) -> dict:
    """The comparability fields of a run's env (GPU names joined into one `gpu` field)."""
    env = env if isinstance(env, dict) else {}
    gpus = env.get("gpus")
    gpus = gpus if isinstance(gpus, list) else []
    names = sorted(str(g.get("name")) for g in gpus if isinstance(g, dict))
    out = {k: env.get(k) for k in SOFTWARE_FIELDS + HARDWARE_FIELDS if k != "gpu"}
    features = out["cpu_features"]
    if isinstance(features, list):
        out["cpu_features"] = " ".join(sorted(map(str, features))) or "none"
    out["gpu"] = ", ".join(names) or "none"
    return out


def identity_mismatches(docs: Sequence[dict], fields: Sequence[str]) -> dict[str, list]:
    """{field: [value per run]} for every identity field whose value differs between runs."""
    ids = [identity(d.get("env") or {}) for d in docs]
    return {f: [i.get(f) for i in ids] for f in fields
            if len({repr(i.get(f)) for i in ids
                    if f not in RECORDED_LATER or i.get(f) is not None}) > 1}


def describe_mismatches(diffs: dict[str, list]) -> str:
    """One line: `tensorflow (2.20.0 vs 2.21.0), intra_op_threads (1 vs 2)`."""
    return ", ".join(f"{f} ({' vs '.join(str(v) for v in values)})"
                     for f, values in diffs.items())


def software_changes(before: Sequence[dict], after: Sequence[dict]) -> list[str]:
    """`field: old → new` for each software field whose values differ between two groups of runs.

    A group with several values lists them all (`2.20.0, 2.21.0`); an empty list means nothing
    changed.
    """
    out = []
    for name in SOFTWARE_FIELDS:
        old = _values(before, name)
        new = _values(after, name)
        if old != new:
            out.append(f"{name}: {', '.join(old)} → {', '.join(new)}")
    return out


def _values(docs: Sequence[dict], name: str) -> list[str]:
    return sorted({str(identity(d.get("env") or {}).get(name)) for d in docs})
