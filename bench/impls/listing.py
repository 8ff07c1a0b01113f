"""List the implementations: classic name, family, devices, unroll modes, runnable here or why not.

Fast by default (no TensorFlow import): GPU presence is read from the NVIDIA driver's files.
`--tf` asks TensorFlow itself, which is what the benchmarks use (takes a few seconds).
"""

from __future__ import annotations

import glob
import importlib.util
import json

from bench.registry import REGISTRY, ImplSpec


def add_arguments(parser) -> None:
    """Options of `rnnbench list`."""
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("--tf", action="store_true",
                        help="ask TensorFlow which GPUs it sees (slower, authoritative)")


def driver_gpus() -> list[str]:
    """GPUs the NVIDIA driver exposes, read from /proc without importing TensorFlow."""
    return sorted(glob.glob("/proc/driver/nvidia/gpus/*")) or sorted(glob.glob("/dev/nvidia[0-9]*"))


def availability(spec: ImplSpec, ask_tf: bool) -> tuple[bool, str]:
    """(runnable here, reason) for `spec` on its best device."""
    if importlib.util.find_spec("tensorflow") is None:
        return False, "TensorFlow is not installed (pip install rnnbench)"
    if not spec.gpu_only:
        return True, "runs on cpu" + (" and gpu" if "gpu" in spec.devices else "")
    if ask_tf:
        from bench.impls.devices import visible_gpus

        if visible_gpus():
            return True, f"GPU visible to TensorFlow: {', '.join(visible_gpus())}"
        return False, f"{spec.name} needs a GPU; none visible to TensorFlow"
    if driver_gpus():
        return True, "NVIDIA GPU found by the driver (check with `rnnbench list --tf`)"
    return False, f"{spec.name} needs a GPU; no NVIDIA GPU found on this machine"


def rows(ask_tf: bool = False) -> list[dict]:
    """One dict per implementation, in registry order."""
    out = []
    for spec in REGISTRY.values():
        runnable, reason = availability(spec, ask_tf)
        out.append({"impl": spec.name, "classic": spec.classic, "family": spec.family,
                    "devices": list(spec.devices), "unrolls": list(spec.unrolls),
                    "runnable_here": runnable, "reason": reason, "how": spec.how})
    return out


def main(args) -> int:
    """Print the implementation table (or JSON)."""
    if args.tf:
        from bench.impls.tfsetup import import_tensorflow

        import_tensorflow()
    table = rows(ask_tf=args.tf)
    if args.json:
        print(json.dumps(table, indent=1))
        return 0
    header = ("impl", "classic", "family", "devices", "unroll", "here", "reason")
    lines = [(r["impl"], r["classic"], r["family"], ",".join(r["devices"]),
              ",".join(r["unrolls"]), "yes" if r["runnable_here"] else "no", r["reason"])
             for r in table]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=False)]
    for line in (header, *lines):
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())
    return 0
