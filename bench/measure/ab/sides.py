"""The two sides of `rnnbench ab`: interpreter, source tree (dir or git ref), env, worker client."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import UserError
from bench.measure.ab.worker import PARENT_ENV, PROTOCOL
from bench.rows import SAMPLES_S

HELLO_TIMEOUT_S = 120.0     # interpreter start + `import bench` on a loaded machine
SETUP_TIMEOUT_S = 900.0     # between two setup messages: one case's equivalence check + trace
MEASURE_TIMEOUT_S = 300.0   # one block of rounds
LOG_TAIL_LINES = 4
# The worker's module, then its name in source trees older than the bench.measure.ab package
# (an A/B job against an older commit runs that commit's own worker).
WORKER_MODULES = ("bench.measure.ab.worker", "bench.measure.ab_worker")
WORKER_FILES = tuple(name.replace(".", "/") + ".py" for name in WORKER_MODULES)
_LAUNCH = ("import importlib.util, runpy, sys\n"
           "def found(name):\n"
           "    try:\n"
           "        return importlib.util.find_spec(name) is not None\n"
           "    except ImportError:\n"
           "        return False\n"
           "names = sys.argv[1:]\n"
           "sys.argv[1:] = []\n"
           "runpy.run_module(next((n for n in names if found(n)), names[0]), run_name='__main__',"
           " alter_sys=True)\n")
REASON_CHARS = 120  # of a worker's own reason in a one-line error; the rest is in its log


@dataclass
class SideSpec:
    """What a side is: interpreter, optional source tree, extra environment variables."""

    name: str
    python: str = sys.executable
    src: str | None = None            # as given on the command line
    env: dict[str, str] = field(default_factory=dict)
    src_dir: str | None = None        # the directory put first on PYTHONPATH
    src_kind: str | None = None       # "dir", "git" or None (the installed package)
    src_sha: str | None = None        # the resolved commit of a git ref

    def describe(self) -> dict:
        """The side as stored in ab.json."""
        return {"python": self.python, "src": self.src, "src_kind": self.src_kind,
                "src_dir": self.src_dir, "src_sha": self.src_sha, "env_vars": dict(self.env)}


class CaseFailed(Exception):
    """A case raised during measurement on one side (the worker itself is still fine)."""


def parse_env(items: list[str] | None, side: str) -> dict[str, str]:
    """`K=V` strings to a dict; UserError naming the side for anything else."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key or "\0" in item:
            raise UserError(f"side {side}: --{side.lower()}-env {item!r} is not KEY=VALUE")
        out[key] = value
    return out


def resolve_python(path: str | None, side: str) -> str:
    """An absolute path to an executable interpreter (names are looked up on PATH)."""
    if not path:
        return sys.executable
    found = path if os.sep in path else shutil.which(path) or path
    if not (os.path.isfile(found) and os.access(found, os.X_OK)):
        raise UserError(f"side {side}: {path}: not an executable")
    return os.path.abspath(found)


def _git(args: list[str], cwd: str | os.PathLike) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)


class Checkouts:
    """Resolves `--a-src/--b-src`; git refs become temporary worktrees removed on close()."""

    def __init__(self, cwd: str | os.PathLike | None = None):
        self.cwd = Path(cwd or os.getcwd())
        self._made: list[tuple[Path, Path]] = []  # (repo, temporary parent folder)

    def resolve(self, spec: SideSpec) -> None:
        """Fill spec.src_dir/src_kind/src_sha from spec.src (UserError naming the side)."""
        text = spec.src
        if not text:
            return
        path = Path(text).expanduser()
        if path.is_dir():
            if not (path / "bench" / "__init__.py").is_file():
                raise UserError(f"side {spec.name}: {text} has no bench/__init__.py "
                                "(not an rnnbench source tree)")
            spec.src_dir, spec.src_kind = str(path.resolve()), "dir"
            return
        top = _git(["rev-parse", "--show-toplevel"], self.cwd)
        if top.returncode != 0:
            raise UserError(f"side {spec.name}: {text!r} is not a directory, and the current "
                            "directory is not in a git repository to look it up as a ref")
        repo = Path(top.stdout.strip())
        sha = _git(["rev-parse", "--verify", "--quiet", f"{text}^{{commit}}"], repo)
        if sha.returncode != 0 or not sha.stdout.strip():
            raise UserError(f"side {spec.name}: unknown git ref {text!r} in {repo} (and no "
                            "such directory)")
        spec.src_sha = sha.stdout.strip()
        parent = Path(tempfile.mkdtemp(prefix=f"rnnbench-ab-{spec.name.lower()}-"))
        target = parent / "src"
        added = _git(["worktree", "add", "--detach", str(target), spec.src_sha], repo)
        if added.returncode != 0:
            shutil.rmtree(parent, ignore_errors=True)
            raise UserError(f"side {spec.name}: cannot check out {text!r}: "
                            f"{(added.stderr.strip().splitlines() or ['git failed'])[-1]}")
        self._made.append((repo, parent))
        if not (target / "bench" / "__init__.py").is_file():
            raise UserError(f"side {spec.name}: commit {spec.src_sha[:12]} ({text}) has no "
                            "bench/ package")
        if not any((target / name).is_file() for name in WORKER_FILES):
            raise UserError(f"side {spec.name}: commit {spec.src_sha[:12]} ({text}) predates "
                            f"`rnnbench ab` (it has no {WORKER_FILES[-1]}): choose a newer ref")
        spec.src_dir, spec.src_kind = str(target.resolve()), "git"

    def close(self) -> None:
        """Remove every temporary worktree (also after errors)."""
        while self._made:
            repo, parent = self._made.pop()
            _git(["worktree", "remove", "--force", str(parent / "src")], repo)
            shutil.rmtree(parent, ignore_errors=True)
            _git(["worktree", "prune"], repo)


def how_it_ended(code: int | None) -> str:
    """`was killed by signal 9 (SIGKILL)`, `exited with code 3`, or `stopped answering`."""
    import signal

    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            name = f" ({signal.Signals(-code).name})"
        except ValueError:
            name = ""
        return f"was killed by signal {-code}{name}"
    return f"exited with code {code}"


def log_tail(path: str | os.PathLike, lines: int = LOG_TAIL_LINES) -> str:
    """The last non-empty lines of a log file, joined with ' | ' (empty if unreadable)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = [ln.strip() for ln in text.splitlines() if ln.strip()][-lines:]
    return " | ".join(kept)[-600:]


class WorkerSide:
    """A side backed by a worker process: setup(), measure(), close() (JSON lines, PROTOCOL)."""

    def __init__(self, spec: SideSpec, log_path: str | os.PathLike, *,
                 hello_timeout: float = HELLO_TIMEOUT_S, setup_timeout: float = SETUP_TIMEOUT_S,
                 measure_timeout: float = MEASURE_TIMEOUT_S):
        self.spec, self.name, self.log_path = spec, spec.name, Path(log_path)
        # "worker 2" for worker-b-2.log (the second generation); "worker 1" for worker-b.log
        generation = self.log_path.stem.rsplit("-", 1)[-1]
        self.worker = f"worker {generation if generation.isdigit() else 1}"
        self.hello_timeout, self.setup_timeout = hello_timeout, setup_timeout
        self.measure_timeout = measure_timeout
        self.proc: subprocess.Popen | None = None
        self.hello: dict = {}
        self._lines: queue.Queue = queue.Queue()
        self._cwd: str | None = None

    # process ------------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        """The worker's environment: ours, TF quiet, the side's variables, its source first."""
        env = dict(os.environ)
        env["TF_CPP_MIN_LOG_LEVEL"] = "2"
        env.update(self.spec.env)
        if self.spec.src_dir:
            old = env.get("PYTHONPATH")
            env["PYTHONPATH"] = self.spec.src_dir + (os.pathsep + old if old else "")
        env[PARENT_ENV] = str(os.getpid())
        return env

    def launch(self) -> None:
        """Start the worker process (without waiting for it)."""
        if self.proc is not None:
            return
        self._cwd = tempfile.mkdtemp(prefix="rnnbench-ab-cwd-")
        with open(self.log_path, "ab") as log:
            try:
                self.proc = subprocess.Popen(
                    [self.spec.python, "-c", _LAUNCH, *WORKER_MODULES], cwd=self._cwd,
                    env=self.environment(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=log, start_new_session=True)
            except OSError as exc:
                raise UserError(f"side {self.name}: {self.spec.python}: cannot start "
                                f"({exc.strerror or exc})") from None
        threading.Thread(target=self._pump, daemon=True).start()

    def start(self) -> dict:
        """Start the worker (if not yet) and check its hello; return the hello message."""
        self.launch()
        hello = self._read(self.hello_timeout, "start-up")
        if hello.get("type") != "hello":
            raise self._fail(f"worker sent {hello.get('type')!r} instead of hello")
        if hello.get("protocol") != PROTOCOL:
            raise self._fail(f"worker speaks protocol {hello.get('protocol')}, this rnnbench "
                             f"speaks {PROTOCOL}")
        where = hello.get("bench_path") or ""
        if self.spec.src_dir and not Path(where).is_relative_to(Path(self.spec.src_dir)):
            raise self._fail(f"worker imported bench from {where}, not from {self.spec.src_dir}")
        self.hello = hello
        return hello

    def _pump(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._lines.put(raw)
        self._lines.put(None)

    def request_exit(self) -> None:
        """Tell the worker to exit without waiting for it (close() then waits)."""
        proc = self.proc
        if proc is None or proc.stdin.closed:
            return
        try:
            if proc.poll() is None:
                proc.stdin.write(b'{"cmd": "exit"}\n')
                proc.stdin.flush()
            proc.stdin.close()
        except OSError:
            pass

    def close(self) -> None:
        """Ask the worker to exit; kill it if it does not (idempotent)."""
        self.request_exit()
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._cwd:
            shutil.rmtree(self._cwd, ignore_errors=True)
            self._cwd = None

    # protocol -----------------------------------------------------------------------------
    def _send(self, msg: dict, during: str) -> None:
        if self.proc is None:
            raise self._fail(f"worker is not running ({during})")
        try:
            self.proc.stdin.write((json.dumps(msg) + "\n").encode("utf-8"))
            self.proc.stdin.flush()
        except OSError:
            raise self._died(during) from None

    def _read(self, timeout: float, during: str) -> dict:
        try:
            raw = self._lines.get(timeout=timeout)
        except queue.Empty:
            if self.proc is not None:
                self.proc.kill()
            raise self._fail(f"{self.worker} gave no answer within {timeout:g}s during "
                             f"{during} (killed)", log=True) from None
        if raw is None:
            raise self._died(during)
        try:
            msg = json.loads(raw)
        except json.JSONDecodeError:
            raise self._fail(f"worker sent a malformed line during {during}: "
                             f"{raw[:80]!r}") from None
        if not isinstance(msg, dict):
            raise self._fail(f"worker sent a non-object message during {during}")
        if msg.get("type") == "fatal":
            reason = str(msg.get("reason") or "no reason given")
            if len(reason) > REASON_CHARS:
                reason = reason[:REASON_CHARS - 1] + "…"
            raise self._fail(f"{self.worker} failed during {during}: {reason}", log=True)
        return msg

    def _died(self, during: str) -> UserError:
        code = None
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.proc.wait(timeout=10)
        tail = log_tail(self.log_path)
        if during == "start-up" and ("No module named 'bench'" in tail
                                     or "No module named bench" in tail):
            hint = (f"--{self.name.lower()}-src DIR" if not self.spec.src_dir
                    else "a source tree that has it")
            return self._fail(f"rnnbench is not importable by {self.spec.python}; install it "
                              f"there or pass {hint}")
        if during == "start-up" and ("No module named 'bench.measure" in tail or (
                "ModuleNotFoundError" in tail and "'bench.measure.ab" in tail)):
            return self._fail(f"the rnnbench used by {self.spec.python} has no ab worker (a "
                              "version older than `rnnbench ab`)")
        return self._fail(f"{self.worker} {how_it_ended(code)} during {during}", log=True)

    def _fail(self, what: str, *, log: bool = False) -> UserError:
        """One line: the side, what happened, and where the worker's log is (the details)."""
        where = f"; its log: {self.log_path}" if log else ""
        return UserError(f"side {self.name}: {what}{where}")

    # the side interface ---------------------------------------------------------------------
    def setup(self, cases: list[dict], threads: int | None, equivalence: bool,
              progress=None) -> dict:
        """Build every case in the worker; return its `ready` message (env + case statuses)."""
        if self.proc is None:
            self.start()
        self._send({"cmd": "setup", "cases": cases, "threads": threads,
                    "equivalence": equivalence}, "setup")
        while True:
            msg = self._read(self.setup_timeout, "setup")
            if msg.get("type") == "progress":
                if progress is not None:
                    progress(self.name, msg)
                continue
            if msg.get("type") != "ready" or not isinstance(msg.get("cases"), dict):
                raise self._fail(f"unexpected {msg.get('type')!r} message during setup")
            return msg

    def measure(self, case_id: str, rounds: int, warmup: int) -> list[float]:
        """One block: raw seconds of `rounds` timed calls (CaseFailed if the case raised)."""
        during = f"measure of {case_id}"
        self._send({"cmd": "measure", "id": case_id, "rounds": rounds, "warmup": warmup},
                   during)
        msg = self._read(self.measure_timeout, during)
        if msg.get("type") == "error" and msg.get("id") == case_id:
            raise CaseFailed(msg.get("reason") or "error")
        samples = msg.get(SAMPLES_S)
        if (msg.get("type") != "samples" or msg.get("id") != case_id
                or not isinstance(samples, list) or len(samples) != rounds):
            raise self._fail(f"unexpected answer during {during}: {str(msg)[:120]}")
        return [float(s) for s in samples]
