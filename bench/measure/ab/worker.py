"""One side of `rnnbench ab`: a long-lived worker that builds cases once and times blocks.

Run as `python -m bench.measure.ab.worker` by the coordinator (bench.measure.ab). Protocol:
JSON lines on stdin/stdout, version PROTOCOL. The real stdout is kept for the protocol and fd 1
is pointed at stderr first, so nothing TensorFlow prints can corrupt it.

  worker -> {"type": "hello", "protocol", "rnnbench", "bench_path", "python"}
  setup  -> progress lines, then {"type": "ready", "env", "cases": {id: {status, reason,
            compile_s, code_version, kernel}}}; status is ok, skipped, error, or unknown (this
            side's registry does not have the case); kernel (added within protocol 1) is what
            the traced step ran, and a broken kernel promise (no cuDNN) is an error;
            memory_peak_bytes and memory_method (added within protocol 1): the case's peak
            memory over its build and first call; setup_s (added within protocol 1): seconds
            of the set-up by step (start: threads and TensorFlow import; check, the
            equivalence included; build; first_call; settle) summed over the cases
  measure {"id", "rounds", "warmup"} -> {"type": "samples", "id", "samples_s"} or
            {"type": "error", "id", "reason"}
  exit   -> the worker exits 0; stdin EOF does too (the coordinator is gone).
Anything else -> {"type": "fatal", "reason"} and exit 1.

Protocol history: 1 — first version.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

PROTOCOL = 1
# The coordinator passes its pid: a worker whose parent changed (the coordinator died before
# PR_SET_PDEATHSIG was set) exits at once.
PARENT_ENV = "RNNBENCH_AB_PARENT"


class ProtocolError(Exception):
    """A malformed or unexpected message from the coordinator."""


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (best effort; no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    parent = os.environ.get(PARENT_ENV)
    if parent and parent.isdigit() and os.getppid() != int(parent):
        sys.exit(3)


def take_protocol_stdout():
    """Duplicate the real stdout for the protocol and send fd 1 (and sys.stdout) to stderr."""
    sys.stdout.flush()
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    return proto


class Worker:
    """The worker's state: built steps per case id; `handle` answers one message."""

    def __init__(self, send):
        self.send = send
        self.steps: dict[str, object] = {}  # case id -> its prepared CaseRun

    def hello(self) -> None:
        """The first message: who this worker is."""
        import bench

        self.send({"type": "hello", "protocol": PROTOCOL, "rnnbench": bench.__version__,
                   "bench_path": str(Path(bench.__file__).resolve().parent),
                   "python": sys.executable})

    def handle(self, msg: dict) -> bool:
        """Answer one coordinator message; False when the worker should exit."""
        if not isinstance(msg, dict):
            raise ProtocolError(f"expected a JSON object, got {type(msg).__name__}")
        cmd = msg.get("cmd")
        if cmd == "setup":
            self.setup(msg)
        elif cmd == "measure":
            self.measure(msg)
        elif cmd == "exit":
            return False
        else:
            raise ProtocolError(f"unknown command {cmd!r}")
        return True

    def setup(self, msg: dict) -> None:
        """Apply threads, then check, build and first-call every case; reply `ready`."""
        from bench.cases import Case
        from bench.measure.env import apply_threads

        try:
            params = list(msg["cases"])
            threads = msg.get("threads")
            equivalence = bool(msg.get("equivalence", True))
        except (KeyError, TypeError):
            raise ProtocolError("setup needs a list of cases") from None
        started = time.perf_counter()
        apply_threads(threads)  # before any TensorFlow op (this imports TensorFlow)
        from bench.measure.env import collect_env

        totals = {"start": time.perf_counter() - started}
        cases = [Case.from_params(p) for p in params]
        report: dict[str, dict] = {}
        equivalent: dict[tuple, str | None] = {}
        for i, case in enumerate(cases):
            self.send({"type": "progress", "done": i, "total": len(cases), "id": case.id})
            report[case.id] = self._setup_case(case, equivalent if equivalence else None,
                                               totals)
        env = collect_env(threads)
        totals["total"] = time.perf_counter() - started
        self.send({"type": "ready", "env": env, "cases": report,
                   "setup_s": {k: round(v, 3) for k, v in totals.items()}})

    def _setup_case(self, case, equivalent: dict | None, totals: dict) -> dict:
        from bench.measure.case_run import CaseRun

        run = CaseRun(case, equivalence=equivalent)
        if run.prepare():
            self.steps[case.id] = run
        for step, seconds in run.setup_s.items():
            totals[step] = totals.get(step, 0.0) + seconds
        return {"status": run.status, "reason": run.reason, "compile_s": run.compile_s,
                "code_version": run.code_version, "kernel": run.kernel,
                "memory_peak_bytes": run.memory.get("memory_peak_bytes"),
                "memory_method": run.memory.get("memory_method")}

    def measure(self, msg: dict) -> None:
        """Time one block: `warmup` untimed calls, then `rounds` timed ones."""
        from bench.errors import one_line
        from bench.rows import SAMPLES_S

        try:
            case_id, rounds, warmup = msg["id"], int(msg["rounds"]), int(msg["warmup"])
        except (KeyError, TypeError, ValueError):
            raise ProtocolError("measure needs id, rounds and warmup") from None
        run = self.steps.get(case_id)
        if run is None:
            raise ProtocolError(f"measure of {case_id!r}, which is not set up here")
        try:
            samples = run.time(rounds, warmup)
        except Exception as exc:
            self.send({"type": "error", "id": case_id, "reason": one_line(exc)})
            return
        self.send({"type": "samples", "id": case_id, SAMPLES_S: samples})


def serve(stdin, proto) -> int:
    """The message loop: hello, then one reply per line until exit or EOF."""
    def send(obj: dict) -> None:
        proto.write(json.dumps(obj, default=_default) + "\n")
        proto.flush()

    worker = Worker(send)
    worker.hello()
    for line in stdin:
        if not line.strip():
            continue
        try:
            if not worker.handle(json.loads(line)):
                return 0
        except (ProtocolError, json.JSONDecodeError) as exc:
            send({"type": "fatal", "reason": f"protocol error: {exc}"})
            return 1
        except Exception as exc:
            from bench.errors import one_line

            send({"type": "fatal", "reason": one_line(exc)})
            return 1
    return 0


def _default(obj):
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def main() -> int:
    """Entry point of `python -m bench.measure.ab.worker`."""
    die_with_parent()
    proto = take_protocol_stdout()
    started = time.perf_counter()
    code = serve(sys.stdin, proto)
    print(f"ab worker: done after {time.perf_counter() - started:.1f}s (exit {code})",
          file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
