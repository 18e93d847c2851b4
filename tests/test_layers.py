"""Imports run one way: front ends -> client -> transports and the core -> the I/O-free modules,
with no cycles (read from the source, so a lazy import inside a function counts too)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "qwen_gradio"

DESIGN = PACKAGE.parent / "docs" / "design.md"


def read_layers() -> dict[int, set[str]]:
    """The layers as docs/design.md draws them (its ``layers`` block: one line per layer,
    top first, "N  name  module module ..."): the one statement of the architecture."""
    text = DESIGN.read_text()
    block = text.split("<!-- layers -->\n```text\n", 1)[1].split("```", 1)[0]
    layers: dict[int, set[str]] = {}
    for line in block.splitlines():
        number, _name, *modules = line.split()
        layers[int(number)] = set(modules)
    return layers


#: Each module's layer: a module may import only from its own layer or those below it.
LAYERS = read_layers()
LAYER = {module: layer for layer, modules in LAYERS.items() for module in modules}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1]) if parts[-1] == "__init__" and len(parts) > 1 else ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The package's modules that ``path`` imports (relative imports, resolved)."""
    name = module_name(path)
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    if name == "__init__":
        package = []
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            if target in LAYER:
                found.add(target)
            for alias in node.names:  # "from . import errors"
                candidate = ".".join(filter(None, [target, alias.name]))
                if candidate in LAYER:
                    found.add(candidate)
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def test_every_module_has_a_layer() -> None:
    assert set(graph()) == set(LAYER)


def test_imports_run_one_way() -> None:
    wrong = [
        f"{module} (layer {LAYER[module]}) imports {target} (layer {LAYER[target]})"
        for module, targets in graph().items()
        for target in targets
        if LAYER[target] > LAYER[module]
    ]
    assert not wrong


def test_there_are_no_import_cycles() -> None:
    edges = graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        assert module not in path, " -> ".join([*path, module])
        if module in done:
            return
        for target in sorted(edges[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(edges):
        visit(module, [])


MAX_FUNCTION_LINES = 80
WHOLE_BY_DESIGN = {"replica"}  # a whole Space in one module (its docstring says why)


def test_no_function_is_longer_than_80_lines() -> None:
    """(Their McCabe complexity is ruff's C901, at most 15: pyproject.toml.)"""
    long = [
        f"{module_name(path)}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for path in PACKAGE.rglob("*.py")
        if module_name(path) not in WHOLE_BY_DESIGN
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (node.end_lineno or node.lineno) - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long
