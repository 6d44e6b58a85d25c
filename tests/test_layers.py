"""The package's import graph: no circles, and no import from a lower layer to a higher one
(docs/ARCHITECTURE.md). Imports inside functions count too: a lazy import is still a dependency."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "featherface"

# module prefix -> layer; a module may import only modules of its own layer or lower ones.
LAYERS = {
    "constants": 0, "geometry": 0, "files": 0,
    "models": 1,
    "anchors": 2,
    "postprocess": 3, "losses": 3, "drawing": 3,
    "checkpoint": 4, "convert": 4, "loading": 4, "runners": 4, "profiling": 4, "peers": 4,
    "detector": 5, "export": 5, "quantize": 5,
    "data": 6, "evaluation": 6, "training": 6,
    "benchmarks": 7,
    "cli": 8,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("featherface"):
                found.add(target)
                for alias in node.names:  # "from . import train" imports a module
                    if (PKG.parent / (target.replace(".", "/") + f"/{alias.name}.py")).is_file():
                        found.add(f"{target}.{alias.name}")
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("featherface")}
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for target in _imports(path):
            # an import of a package means its __init__; keep only modules that exist
            while target and target not in modules:
                target = target.rsplit(".", 1)[0] if "." in target else ""
            if target and target != name:
                deps.add(target)
        graph[name] = deps
    return graph


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None  # the root __init__ is the public facade


def test_every_module_has_a_layer():
    missing = [m for m in _graph() if m != "featherface" and _layer(m) is None]
    assert not missing, f"add these to LAYERS (and docs/ARCHITECTURE.md): {missing}"


def test_imports_only_go_down():
    wrong = [f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})"
             for m, deps in _graph().items() if _layer(m) is not None
             for d in deps if _layer(d) is None or _layer(d) > _layer(m)]
    assert not wrong, "\n".join(wrong)


def test_no_import_circles():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                pytest.fail("import circle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_checker_sees_lazy_and_relative_imports():
    """The checker itself: imports inside functions and ``from . import x`` are edges."""
    graph = _graph()
    assert "featherface.detector" in graph["featherface.cli.detect"]
    assert "featherface.models.featherface" in graph["featherface.training.engine"]
    assert "featherface.cli.train" in graph["featherface.cli"]  # from . import ... inside a function
    assert "featherface.export" in graph["featherface.detector"]  # lazy import in from_pretrained
