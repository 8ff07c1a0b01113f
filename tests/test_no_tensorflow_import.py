"""Reading results (report, compare, check, plots) must never import TensorFlow (docs/design.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

# Runs in a fresh interpreter; prints a JSON verdict as its last line.
SCRIPT = r"""
import contextlib, io, json, sys
run_a, run_b, out = sys.argv[1:4]
import bench.results, bench.rows, bench.identity, bench.analysis.stats, bench.analysis.plots
import bench.analysis.report, bench.analysis.compare, bench.analysis.check
import bench.analysis.verdicts
import bench.history.command, bench.history.publish, bench.history.store
from bench import cli
after_import = "tensorflow" in sys.modules
codes = {}
with contextlib.redirect_stdout(io.StringIO()):
    try:
        cli.main(["--help"])
    except SystemExit as exc:
        codes["--help"] = exc.code
    codes["report"] = cli.main(["report", run_a])
    codes["compare"] = cli.main(["compare", run_a, run_b, "--cross-machine", "--out", out])
    codes["check"] = cli.main(["check", "--baseline", run_a, "--current", run_b,
                               "--report-only"])
    store = out + ".sqlite"
    codes["history add"] = cli.main(["history", "add", run_a, run_b, "--store", store])
    codes["history series"] = cli.main(["history", "series", "--store", store])
    codes["history changes"] = cli.main(["history", "changes", "--store", store])
    codes["publish"] = cli.main(["publish", "--store", store, "--out", out + "-site"])
print(json.dumps({"after_import": after_import, "after_commands": "tensorflow" in sys.modules,
                  "codes": codes}))
"""


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> tuple[dict, Path]:
    """One fresh interpreter with every command registered (as `rnnbench` runs) that runs
    the reading commands: (its verdict, the folder it worked in)."""
    tmp_path = tmp_path_factory.mktemp("no-tf")
    for name in ("run_a", "run_b"):
        shutil.copytree(FIXTURES / name, tmp_path / name)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "run_a"), str(tmp_path / "run_b"),
         str(tmp_path / "cmp")],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), tmp_path


def test_report_compare_check_history_publish_do_not_import_tensorflow(fresh):
    result, tmp_path = fresh
    assert result == {"after_import": False, "after_commands": False,
                      "codes": {"--help": 0, "report": 0, "compare": 0, "check": 0,
                                "history add": 0, "history series": 0, "history changes": 0,
                                "publish": 0}}
    assert (tmp_path / "cmp-site" / "index.html").exists()
    assert (tmp_path / "run_a" / "report.md").exists()
    assert (tmp_path / "cmp" / "compare.md").exists()


def test_full_cli_help_does_not_import_tensorflow(fresh):
    """`rnnbench --help` registers every subcommand module: none may import TensorFlow."""
    result, _ = fresh
    assert result["after_import"] is False
    assert result["after_commands"] is False
    assert result["codes"]["--help"] == 0
