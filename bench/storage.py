"""Run folders and atomic writes: one run per folder, taken atomically; files never half-written.

No TensorFlow here. A run folder is created with a plain mkdir and claimed with an exclusive
lock file, so of two processes aimed at one folder exactly one gets it; every file is written
through a temp file + fsync + os.replace with the user's umask.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.errors import UserError

RESULTS_JSON = "results.json"


RUN_LOCK = ".rnnbench-run.lock"
_OWNED_RUN_DIRS: set[Path] = set()


def make_run_dir(out: str | os.PathLike | None, run_id: str, root: str | os.PathLike = "reports",
                 *, dry_run: bool = False) -> Path:
    """Take a new run folder (`out`, or `root/run_id`) for this process, atomically.

    The folder is created with a plain mkdir (parents first) and claimed with an exclusive lock
    file held until the process exits, so of two processes aimed at the same folder, however
    close together, exactly one gets it. A folder that exists is accepted only when it is
    empty or already taken by this process; anything else is a one-line UserError.
    `dry_run` makes the same refusals without creating anything (a command checks its --out
    before slow start-up work, then takes the folder for real).
    """
    path = Path(out) if out is not None else Path(root) / run_id
    if (path / RESULTS_JSON).exists():
        raise UserError(f"{path} already holds a run ({RESULTS_JSON}); results are never "
                        "overwritten: choose another --out")
    if path.resolve() in _OWNED_RUN_DIRS:
        return path
    try:
        if dry_run:
            if path.exists():
                _refuse_existing(path)
            elif not next(p for p in path.parents if p.exists()).is_dir():
                raise NotADirectoryError(20, "a parent is not a folder")
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir()
        except FileExistsError:
            _refuse_existing(path)
        try:
            fd = os.open(path / RUN_LOCK, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            raise _taken(path) from None
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{os.getpid()} {run_id}\n")
    except OSError as exc:
        raise UserError(f"cannot write to {path}: {exc.strerror or exc}") from None
    _OWNED_RUN_DIRS.add(path.resolve())
    atexit.register(_release, path / RUN_LOCK)
    return path


def _refuse_existing(path: Path) -> None:
    """UserError unless `path` is an empty folder that no other process has taken."""
    if not path.is_dir():
        raise UserError(f"{path} exists and is not a folder: choose another --out")
    if (path / RUN_LOCK).exists():
        raise _taken(path)
    if any(path.iterdir()):
        raise UserError(f"{path} is not empty; a run never writes into a folder of other "
                        "files: choose a new or empty --out")


def _taken(path: Path) -> UserError:
    pid = _lock_pid(path / RUN_LOCK)
    if pid is not None and not _alive(pid):
        return UserError(f"{path} holds the lock of rnnbench process {pid}, which is no longer "
                         f"running (a killed run?): look at what it left, remove "
                         f"{path / RUN_LOCK} to reuse the folder, or choose another --out")
    who = f" (pid {pid})" if pid is not None else ""
    return UserError(f"{path} is being written by another rnnbench process{who} ({RUN_LOCK}); "
                     "choose another --out")


def _lock_pid(lock: Path) -> int | None:
    try:
        return int(lock.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _release(lock: Path) -> None:
    lock.unlink(missing_ok=True)


def release_run_dir(path: str | os.PathLike) -> None:
    """Give up this process's claim on a finished run folder (its lock file goes)."""
    path = Path(path)
    _OWNED_RUN_DIRS.discard(path.resolve())
    _release(path / RUN_LOCK)


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (else set and restore)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through a temp file in the same folder and os.replace.

    The file gets the mode a plain open() would give it (0o666 less the umask), not the
    temp file's 0600.
    An OSError (a full disk, a read-only or vanished folder) is a WriteError naming the path:
    the temp file is removed and whatever `path` held before is left as it was.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise WriteError(path, exc) from None
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: str | None) -> None:
    if tmp is not None:
        with contextlib.suppress(OSError):
            Path(tmp).unlink(missing_ok=True)


class WriteError(UserError):
    """A file could not be written (full disk, read-only folder, ...): one line, exit 2."""

    def __init__(self, path: str | os.PathLike, exc: OSError):
        self.path, self.errno = Path(path), exc.errno
        super().__init__(f"cannot write {path}: {exc.strerror or exc}"
                         + (f" (errno {exc.errno})" if exc.errno else ""))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 `text` atomically (see atomic_write_bytes)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def read_bytes(path: str | os.PathLike) -> bytes:
    """A file's bytes; one-line UserError naming the file when it cannot be read."""
    path = Path(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None


def parse_json(data: bytes, path: str | os.PathLike, what: str) -> object:
    """Parse the bytes of the JSON file at `path` (gzipped when it ends in .gz); one-line
    UserError naming the file.

    `what` names the expected document in messages (e.g. "results file"). Hostile input is
    refused, never a traceback: malformed or truncated JSON, nesting deeper than Python's
    parser can take, integers too long to convert, bytes that are not UTF-8. Callers read the
    bytes first (read_bytes) so that they can hash the same bytes they parse.
    """
    import gzip
    import json

    path = Path(path)
    try:
        raw = gzip.decompress(data) if path.suffix == ".gz" else data
        return json.loads(raw.decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: malformed JSON (line {exc.lineno}: {exc.msg}); the file may "
                        f"be truncated, half-written or not a {what}") from None
    except RecursionError:
        raise UserError(f"{path}: JSON nested too deeply to be a {what}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text, so not a {what}") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python converts
        raise UserError(f"{path}: unreadable JSON ({str(exc).splitlines()[0][:120]}); not a "
                        f"{what}") from None
    except (OSError, EOFError) as exc:
        raise UserError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None


def upgrade_document(doc: object, upgrades: dict[int, Callable[[dict], dict]], latest: int,
                     source: str, what: str) -> dict:
    """Bring a versioned document to `latest` through `upgrades[n]` (version n to n+1), step by
    step; an unknown or newer `schema_version` is a UserError naming `what` was read."""
    version = doc.get("schema_version") if isinstance(doc, dict) else None
    if not isinstance(version, int) or version < 1:
        raise UserError(f"{source}: schema_version {version!r} is not a known {what} version")
    if version > latest:
        raise UserError(f"{source}: schema_version {version} is newer than this rnnbench "
                        f"understands ({latest}); upgrade rnnbench to read it")
    while version < latest:
        doc = upgrades[version](doc)
        version = doc["schema_version"]
    return doc
