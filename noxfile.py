"""nox sessions for rnnbench: tests, lint, benchmarks, reports and the regression check."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True  # TensorFlow is a large install: build it once
nox.options.sessions = ["tests", "lint"]  # benchmarks are heavy: run them by name

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHON = ["3.11"]

PRINT_VERSIONS = (
    "import tensorflow as tf, keras; b = tf.sysconfig.get_build_info(); "
    "print('tensorflow', tf.__version__, '| keras', keras.__version__, '| cuda', "
    "b.get('cuda_version'), '| cudnn', b.get('cudnn_version'), '| gpus', "
    "[d.name for d in tf.config.list_physical_devices('GPU')])"
)


def _install(session: nox.Session, extras: str = "dev") -> None:
    """Install the project with its extras (dependencies come from pyproject.toml)."""
    session.install("-e", f".[{extras}]")


def _bench(session: nox.Session, *args: str, extras: str = "dev") -> None:
    """Install, print the TF/CUDA/cuDNN versions, then run an rnnbench command."""
    _install(session, extras)
    session.run("python", "-c", PRINT_VERSIONS)
    session.run("rnnbench", *args, *session.posargs)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the unit and integration tests (the README's test command)."""
    _install(session)
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Lint with ruff."""
    session.install(*[d for d in PYPROJECT["project"]["optional-dependencies"]["dev"]
                      if d.startswith("ruff")])
    session.run("ruff", "check", "bench", "tests", "noxfile.py", *session.posargs)


@nox.session(python=PYTHON)
def smoke(session: nox.Session) -> None:
    """The smoke preset on CPU: seconds, offline; writes reports/<run-id>/."""
    _bench(session, "run", "--preset", "smoke")


@nox.session(name="bench-cpu", python=PYTHON)
def bench_cpu(session: nox.Session) -> None:
    """The default CPU table (preset cpu); minutes."""
    _bench(session, "run", "--preset", "cpu")


@nox.session(name="bench-gpu", python=PYTHON)
def bench_gpu(session: nox.Session) -> None:
    """The GPU suite: verify cuDNN against the reference on the GPU, then preset gpu."""
    _install(session, "dev,gpu")
    session.run("python", "-c", PRINT_VERSIONS)
    # Exits 2 with a one-line error when TensorFlow sees no GPU: never an empty report.
    session.run("rnnbench", "verify", "--device", "gpu")
    session.run("rnnbench", "run", "--preset", "gpu", *session.posargs)


@nox.session(python=PYTHON)
def tta(session: nox.Session) -> None:
    """Time-to-accuracy on row-by-row MNIST (offline subset) for the CPU implementations."""
    _bench(session, "tta", "--task", "row")


@nox.session(python=PYTHON)
def report(session: nox.Session) -> None:
    """Write report.md and figures for a run folder: nox -s report -- reports/<run-id>."""
    _install(session)
    session.run("rnnbench", "report", *session.posargs)


@nox.session(python=PYTHON)
def compare(session: nox.Session) -> None:
    """Compare runs: nox -s compare -- RUN_A RUN_B [--cross-machine]."""
    _install(session)
    session.run("rnnbench", "compare", *session.posargs)


@nox.session(python=PYTHON)
def check(session: nox.Session) -> None:
    """Check stored runs: nox -s check -- --baseline RUN [RUN ...] --current RUN [RUN ...]."""
    _install(session)
    session.run("rnnbench", "check", *session.posargs)


@nox.session(python=PYTHON)
def ab(session: nox.Session) -> None:
    """Blocking speed gate: interleaved A/B of the smoke preset, this tree (B) against a git ref
    or interpreter (A). Default A: the commit in .ci/perf-base. Pass e.g. `-- --a-src main` or
    `-- --a-python /path/to/venv/bin/python`. Each call writes a fresh run folder."""
    _install(session)
    args = session.posargs or ["--a-src", perf_base()]
    out = Path(session.create_tmp()) / f"ab-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    session.run("rnnbench", "ab", "--preset", "smoke", "--threads", "1", "--out", str(out),
                *args)


def perf_base() -> str:
    """The reference commit of the speed gate: first non-comment line of .ci/perf-base."""
    lines = [ln.strip() for ln in Path(".ci/perf-base").read_text().splitlines()]
    return next(ln for ln in lines if ln and not ln.startswith("#"))
