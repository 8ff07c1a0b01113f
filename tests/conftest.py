"""Shared test setup: quiet TensorFlow before any test imports it."""

import os

import pytest

from bench import cli

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def rnnbench(monkeypatch, capsys):
    """Run the real CLI entry point with only the report/compare/check commands registered."""
    mine = {"report", "compare", "check"}
    monkeypatch.setattr(cli, "COMMANDS", tuple(c for c in cli.COMMANDS if c[0] in mine))

    def run(*argv):
        code = cli.main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err
    return run


# The headless-Chromium fixture (tests/browser.py), available to every test module.
from tests.browser import browser  # noqa: E402, F401
