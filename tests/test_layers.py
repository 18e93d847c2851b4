"""Imports run one way: front ends -> client -> transports and the core -> the I/O-free modules,
with no cycles (read from the source, so a lazy import inside a function counts too)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "qwen_gradio"

#: Each module's layer: a module may import only from its own layer or those below it.
LAYERS = {
    0: {"errors", "_version"},
    1: {"messages", "options", "routing"},
    2: {"space", "stream", "_cache", "_warm", "tokens"},
    3: {"_transports", "_transports.http", "_compat", "_transports.direct"},
    4: {"_transports.gradio_client", "_bridge", "settings"},
    5: {"_member", "_job", "streams", "_cancels"},
    6: {"client"},
    7: {"provider", "batch", "_openai", "_responses", "_serving", "_http_replies", "serve"}
    | {"ui", "cli", "replica", "llm_plugin"},
    8: {"gpt4free", "typing", "__init__", "__main__"},
}
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
