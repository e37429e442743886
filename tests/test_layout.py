"""The package layout stays true: data flows one way through the pipeline's stages, with no cycles.

Every ``import`` in ``src/moodscope`` (at module level or inside a function) is read with ``ast``.
A module may import the ground floor, its own stage and the stages below it, never a stage above
it and never the top-level package ``moodscope`` itself (its ``__init__`` is the public facade and
imports from below). Imports between modules may not form a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "moodscope"

GROUND = ("constants", "errors", "extras", "fileio", "paths", "version")
STAGES = (
    *("audio", "features", "datasets", "checkpoint_io", "models", "training"),
    *("analysis", "engine", "library", "server", "cli"),
)
"""The pipeline, bottom to top: a stage imports only the ground floor, itself and the stages before it."""

FACADES = ("moodscope", "moodscope.__main__")
"""The package's public face: may import any stage, and nothing may import it."""


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path, name: str, known: set[str]) -> list[tuple[str, int]]:
    """The moodscope modules ``path`` imports (``from pkg import sub`` counts as ``pkg.sub``), with line numbers."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in known else base, node.lineno))
    return [(m, line) for m, line in found if m == "moodscope" or m.startswith("moodscope.")]


def stage_of(module: str) -> str:
    if module in FACADES:
        return "facade"
    part = module.split(".")[1]
    return "ground" if part in GROUND else part


def rank(stage: str) -> int:
    return -1 if stage == "ground" else STAGES.index(stage)


def import_graph() -> dict[str, list[tuple[str, int]]]:
    mods = modules()
    return {name: imported_modules(path, name, set(mods)) for name, path in mods.items()}


def test_every_module_belongs_to_a_known_stage():
    unknown = sorted(m for m in modules() if stage_of(m) not in (*STAGES, "ground", "facade"))
    assert not unknown, f"modules outside the pipeline's stages (add them to a stage package): {unknown}"


def test_no_upward_imports_and_no_import_of_the_facade():
    problems = []
    for module, imports in import_graph().items():
        stage = stage_of(module)
        if stage == "facade":
            continue
        for target, line in imports:
            target_stage = stage_of(target)
            if target_stage == "facade":
                problems.append(f"{module}:{line} imports the package facade {target!r} (import the defining module)")
            elif rank(target_stage) > rank(stage):
                problems.append(f"{module}:{line} ({stage}) imports {target} ({target_stage}), a later stage")
    assert not problems, "\n".join(problems)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in colour and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        colour[node] = 2
        return None

    for node in sorted(graph):
        if node not in colour and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles():
    graph = {m: {t for t, _ in imports if t != m} for m, imports in import_graph().items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(
    ("graph", "has_cycle"),
    [({"a": {"b"}, "b": {"c"}, "c": set()}, False), ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True)],
)
def test_cycle_finder_finds_cycles(graph, has_cycle):
    assert (find_cycle(graph) is not None) == has_cycle


def test_checker_flags_an_upward_import(tmp_path):
    """The checker itself: a features module importing the library is reported."""
    fake = tmp_path / "moodscope" / "features"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("def f():\n    from moodscope.library.db import connect\n")
    imports = imported_modules(fake / "bad.py", "moodscope.features.bad", {"moodscope.library.db"})
    assert imports == [("moodscope.library.db", 2)]
    assert rank(stage_of("moodscope.library.db")) > rank(stage_of("moodscope.features.bad"))


def test_each_stage_package_documents_itself():
    for stage in STAGES:
        init = PACKAGE / stage / "__init__.py"
        if stage in ("audio",) or not init.parent.exists():
            continue
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 40, f"{init} needs a docstring saying what the {stage} stage does"
