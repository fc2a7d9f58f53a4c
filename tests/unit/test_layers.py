"""The library's layers only point down: core <- config <- plan <- loader <- components.

Read from the source's imports (ast), so a new module joins the check by existing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "components" / "mlplatform"
# Lower number = lower floor. `sdk`, the adapter over Pulumi internals, imports nothing of ours.
LAYERS = {"core": 0, "config": 1, "sdk": 1, "plan": 2, "sources": 3, "loader": 3}
COMPONENTS = 4


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    parts = module.split(".")
    return COMPONENTS if len(parts) < 2 else LAYERS.get(parts[1], COMPONENTS)


def _imports(tree: ast.Module) -> list[tuple[str, bool]]:
    """(imported mlplatform module, at module level?) for every import in the file."""
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("mlplatform")
        ):
            # `from a import b`: b is a submodule or a name defined in a
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.append((sub if sub in MODULES else node.module, id(node) in top))
        elif isinstance(node, ast.Import):
            found += [
                (a.name, id(node) in top) for a in node.names if a.name.startswith("mlplatform")
            ]
    return found


MODULES = {_module(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The module an imported name lives in (`mlplatform.config.StackConfig` -> the package)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_and_sit_at_the_top(module):
    tree = ast.parse(MODULES[module].read_text())
    own = _layer(module)
    for name, at_top in _imports(tree):
        target = _resolve(name)
        if target is None or target == "mlplatform" and own == COMPONENTS:
            continue  # the package's own __init__ re-exports; only components may use it
        assert at_top, f"{module} imports {name} inside a function (an import circle dodged?)"
        assert _layer(target) <= own, f"{module} (layer {own}) imports {target} (layer above)"


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        targets = {_resolve(n) for n, _ in _imports(ast.parse(path.read_text()))}
        graph[module] = {t for t in targets if t and t != module and t != "mlplatform"}
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        assert node not in trail, "import cycle: " + " -> ".join([*trail, node])
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*trail, node])
        done.add(node)

    for module in sorted(graph):
        visit(module, [])


def test_lower_layers_stay_free_of_pulumi_resources():
    for module, path in MODULES.items():
        if _layer(module) <= LAYERS["plan"] and not module.endswith(".sdk"):
            text = path.read_text()
            assert "import pulumi_kubernetes" not in text, module
            assert "pulumi.ComponentResource" not in text, module
