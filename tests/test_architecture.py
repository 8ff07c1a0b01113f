"""The layering of docs/design.md, enforced: imports flow one way and TensorFlow stays fenced.

Every `import` and `from … import` in the package counts, also those inside functions (a lazy
import is still a dependency). A new back edge, an import circle, a TensorFlow import on the
reading side or an oversized module fails here with the offending file and line.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bench"

# Layers from the bottom up. A unit may import itself, the package root (`bench`, for the
# version) and the units listed for it; nothing else of bench.
LOW = ("bench.errors", "bench.args", "bench.storage", "bench.registry", "bench.cases",
       "bench.rows", "bench.tta_rows", "bench.identity", "bench.roofline", "bench.intervals",
       "bench.verdict", "bench.ab_rows", "bench.ab_results", "bench.results")
ALLOWED: dict[str, tuple[str, ...]] = {
    "bench.errors": (),
    "bench.args": LOW[:1],
    "bench.storage": LOW[:1],
    "bench.registry": LOW[:1],
    "bench.cases": LOW[:4],
    "bench.rows": LOW[:5],
    "bench.tta_rows": LOW[:6],
    "bench.identity": LOW[:7],
    "bench.roofline": LOW[:8],
    "bench.intervals": (),
    "bench.verdict": (),
    "bench.ab_rows": LOW[:11],
    "bench.ab_results": LOW[:12],
    "bench.results": LOW[:13],
    "bench.analysis": LOW,
    "bench.impls": LOW,
    "bench.measure": (*LOW, "bench.analysis", "bench.impls"),
    "bench.tta": (*LOW, "bench.analysis", "bench.impls", "bench.measure"),
    "bench.history": (*LOW, "bench.analysis"),
    # The pytest-benchmark suites are entry points, like the CLI: they sit on top.
    "bench.measure.suites": (*LOW, "bench.analysis", "bench.impls", "bench.measure", "bench.tta"),
    "bench.cli": (*LOW, "bench.analysis", "bench.impls", "bench.measure", "bench.tta",
                  "bench.history"),
    "bench.__main__": ("bench.cli",),
}
# Units that must never import TensorFlow or Keras, not even lazily.
TF_FREE = (*LOW, "bench.analysis", "bench.history", "bench.cli")
TF_MODULES = ("tensorflow", "keras", "tf_keras")
MAX_LINES = 400  # "one job per module": a module past this wants splitting


def module_name(path: Path) -> str:
    """Dotted module name of a file under bench/."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str:
    """The layer unit a module belongs to: its sub-package, or the top-level module itself."""
    if module.startswith("bench.measure.suites"):
        return "bench.measure.suites"
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement in a file, lazy ones included."""
    module = module_name(path)
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + is_pkg]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # `from bench import x` imports the module bench.x when x is one.
            names = [f"{target}.{a.name}" for a in node.names]
            subs = [n for n in names if _is_module(n)]
            out += [(node.lineno, n) for n in subs] or [(node.lineno, target)]
    return out


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    base = PACKAGE.parent / rel
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def package_files() -> list[Path]:
    """Every Python file of the package, the pytest suites included."""
    return sorted(PACKAGE.rglob("*.py"))


def test_the_rules_cover_every_unit():
    units = {unit_of(module_name(p)) for p in package_files()} - {"bench"}
    assert units <= set(ALLOWED), f"units without a layer rule: {sorted(units - set(ALLOWED))}"


def test_imports_flow_one_way():
    bad = []
    for path in package_files():
        unit = unit_of(module_name(path))
        allowed = {unit, "bench", *ALLOWED.get(unit, ())}
        for line, target in imports_of(path):
            if target.startswith("bench.") and unit_of(target) not in allowed:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}")
    assert not bad, "imports against the layering of docs/design.md:\n" + "\n".join(bad)


def test_no_import_circle_between_modules():
    graph: dict[str, set[str]] = {}
    for path in package_files():
        graph[module_name(path)] = {t for _, t in imports_of(path)
                                    if t.startswith("bench.") and t != module_name(path)}
    cycle = _find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt.startswith(node + "."):  # a package importing its own submodule
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if state.get(nxt) is None and nxt in graph:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None:
            found = visit(node)
            if found:
                return found
    return None


def test_reading_side_never_imports_tensorflow():
    bad = []
    for path in package_files():
        if unit_of(module_name(path)) in TF_FREE:
            for line, target in imports_of(path):
                if target.split(".")[0] in TF_MODULES:
                    bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}")
    assert not bad, "TensorFlow imported on the TF-free side:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", package_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_size(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines (> {MAX_LINES}): split it"


def test_the_checker_catches_a_back_edge(tmp_path, monkeypatch):
    """The rule engine itself fails on a planted violation (analysis importing measure)."""
    fake = tmp_path / "bench"
    (fake / "analysis").mkdir(parents=True)
    (fake / "measure").mkdir()
    for init in (fake / "__init__.py", fake / "analysis" / "__init__.py",
                 fake / "measure" / "__init__.py"):
        init.write_text("")
    (fake / "measure" / "timing.py").write_text("X = 1\n")
    (fake / "analysis" / "report.py").write_text(
        "def f():\n    from bench.measure import timing\n    return timing\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    with pytest.raises(AssertionError, match=r"analysis/report.py:2 imports bench.measure"):
        test_imports_flow_one_way()


DESIGN = PACKAGE.parent / "docs" / "design.md"


def _design_rows() -> list[str]:
    """The module paths named in the first cell of docs/design.md's module table."""
    return re.findall(r"^\| `(bench/[\w/]+\.py)` \|", DESIGN.read_text(encoding="utf-8"), re.M)


def test_design_doc_has_a_row_for_every_module_and_no_other():
    named = _design_rows()
    assert len(named) == len(set(named)), "a module has two rows"
    modules = {p.relative_to(PACKAGE.parent).as_posix() for p in PACKAGE.rglob("*.py")
               if p.name != "__init__.py"}
    assert sorted(modules - set(named)) == [], "modules without a row in docs/design.md"
    assert sorted(set(named) - modules) == [], "rows of docs/design.md naming no module"


def _stat_key_spellings(root: Path) -> list[str]:
    """`file:line key` of every string literal spelling a step-time stat key outside rows.py."""
    from bench.rows import COMPILE_S, ROUNDS, SAMPLES_S, STAT_COLUMNS

    # `compile_s` is a TTA key as well, `rounds` a flag and a policy field: not searched.
    keys = {*STAT_COLUMNS, SAMPLES_S} - {COMPILE_S, ROUNDS}
    found = []
    for path in sorted(root.rglob("*.py")):
        name = path.relative_to(root.parent).as_posix()
        if name == "bench/rows.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in keys:
                found.append(f"{name}:{node.lineno} {node.value}")
    return found


def test_only_rows_spells_the_step_time_stat_keys():
    """Readers use typed fields or the column constants of bench.rows, never the JSON keys."""
    found = _stat_key_spellings(PACKAGE)
    assert not found, "stat keys spelled outside bench/rows.py:\n" + "\n".join(found)


def test_the_stat_key_check_catches_a_spelling(tmp_path):
    fake = tmp_path / "bench"
    fake.mkdir()
    (fake / "report.py").write_text('def f(row):\n    return row["median_s"]\n')
    assert _stat_key_spellings(fake) == ["bench/report.py:2 median_s"]
