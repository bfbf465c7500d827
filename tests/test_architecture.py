"""The house rules of the code base, checked on the import graph that Python's own parser reads.

- no import circle between project modules (function-local imports count: a circle is a circle);
- the core (``dpbench``) never imports the plug-ins (``dpbench_baselines``, ``dpbench_leaderboard``);
- no arrow runs up the pipeline: a stage imports only itself, lower layers and cross-cutting modules;
- ``dpbench/`` top level holds only packages and a handful of cross-cutting modules;
- modules stay small.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"dpbench": REPO / "dpbench", "dpbench_baselines": REPO / "baselines" / "dpbench_baselines",
         "dpbench_leaderboard": REPO / "leaderboard" / "dpbench_leaderboard"}

#: The stages in import layers: a stage may import any stage at its left, never one at its right. This is the data
#: flow (tasks → convert/synthetic → build → pool → transport → encoders → evaluation → ranking → cli) with one
#: deliberate exception: ``pool`` is the on-disk format that ``build`` writes and every later stage reads, so it
#: sits below the stages that produce pools.
STAGES = ["tasks", "pool", "convert", "synthetic", "build", "transport", "encoders", "evaluation", "ranking", "cli"]
#: Parallel stages that must not import each other either (converters and the generator are alternatives).
SIBLINGS = {("convert", "synthetic"), ("synthetic", "convert")}
#: Modules any stage may use.
CROSS_CUTTING = {"__init__", "__main__", "errors", "io", "results", "data", "py"}
#: Top-level modules allowed beside the stage packages (``data`` is the deprecated alias of ``pool.read``).
TOP_MODULES = {"__init__.py", "__main__.py", "errors.py", "io.py", "results.py", "data.py"}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for name, root in ROOTS.items():
        for path in root.rglob("*.py"):
            parts = [name, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges[name].add(target)
    for name in modules:
        edges.setdefault(name, set())
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _parent_edges(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """Edges without a package's ``__init__`` re-exporting its own submodules (a package is its modules' home)."""
    return {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in edges.items()}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "dpbench" or len(parts) < 2:
        return None
    return parts[1]


def test_the_checker_sees_real_imports() -> None:
    """Guard against a checker that finds nothing: known arrows must be there."""
    edges = _graph()
    assert "dpbench.pool.manifest" in edges["dpbench.pool.verify"]
    assert "dpbench.errors" in edges["dpbench.encoders.specs"]
    assert "dpbench.pool.read" in edges["dpbench_baselines.stream"]
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_no_import_circles() -> None:
    assert _cycles(_parent_edges(_graph())) == []


def test_core_never_imports_the_plugins() -> None:
    edges = _graph()
    bad = sorted(f"{m} -> {t}" for m, ts in edges.items() if m.startswith("dpbench.") or m == "dpbench"
                 for t in ts if t.startswith(("dpbench_baselines", "dpbench_leaderboard")))
    assert bad == []


def test_no_arrow_runs_up_the_pipeline() -> None:
    edges = _graph()
    bad = []
    for module, targets in edges.items():
        source = _stage(module)
        if source is None or source in CROSS_CUTTING:
            continue
        assert source in STAGES, f"{module}: dpbench.{source} is not a pipeline stage; add it to STAGES"
        for target in targets:
            stage = _stage(target)
            if stage is None or stage in CROSS_CUTTING or stage == source:
                continue
            if STAGES.index(stage) > STAGES.index(source) or (source, stage) in SIBLINGS:
                bad.append(f"{module} -> {target}")
    assert sorted(bad) == []


def test_top_level_is_packages_plus_cross_cutting_modules() -> None:
    top = ROOTS["dpbench"]
    modules = {p.name for p in top.glob("*.py")}
    packages = {p.name for p in top.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert modules <= TOP_MODULES, sorted(modules - TOP_MODULES)
    assert packages == set(STAGES), sorted(packages ^ set(STAGES))


@pytest.mark.parametrize("root", sorted(ROOTS))
def test_modules_stay_small(root: str) -> None:
    big = {str(p.relative_to(REPO)): n for p in ROOTS[root].rglob("*.py")
           if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert big == {}
