"""The package's import graph: no circles, and no import from a lower layer to a higher one
(docs/ARCHITECTURE.md). Imports inside functions count too: a lazy import is still a dependency."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "featherface"

# package (or root module) -> layer; a module may import only modules of its own layer or lower ones.
LAYERS = {
    "core": 0,  # the torch-free detector library; its own modules are layered by SUB_LAYERS
    "apps": 1,  # torch-free applications on it: batch runs, jobs, video, Ray, the web and HTTP servers
    "models": 2,  # the torch side from here on: networks, anchors, checkpoints, conversion, loading
    "export": 3,  # ONNX export, INT8 quantisation, the PyTorch runner
    "peers": 4,
    "data": 5,
    "evaluation": 6,
    "training": 7,
    "benchmarks": 8,
    "cli": 9,
    "__main__": 9,  # python -m featherface: the command line
}
# inside a package, as fractions of its layer
SUB_LAYERS = {
    "core": {
        "constants": 0.0, "geometry": 0.0, "files": 0.0, "imageops": 0.0, "priors": 0.1, "weights": 0.0, "errors": 0.0,
        "settings": 0.05,
        "postprocess": 0.2,
        "runners": 0.3, "drawing": 0.3, "align": 0.3,
        "refine": 0.35,  # the landmarks' second look, given the detector's first look as a function
        "detector": 0.4,
        "anonymize": 0.45,  # anonymize(image) without faces detects with the detector
    },
    "apps": {"video": 0.0, "jobs": 0.1, "batch": 0.1, "webapp": 0.1, "raydata": 0.2, "serve": 0.2},
}
# The one import from the core up to the torch side: FaceDetector.from_pretrained hands a .pt
# checkpoint to the torch runner, inside the function and after checking that torch is installed.
ALLOWED_UP = {("featherface.core.detector", "featherface.export.torch_runner")}


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


def _layer(module: str) -> float | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the root __init__ is the public facade
    layer = LAYERS.get(parts[1])
    if layer is None or len(parts) < 3 or parts[1] not in SUB_LAYERS:
        return layer
    sub = SUB_LAYERS[parts[1]].get(parts[2])
    return None if sub is None else layer + sub


def test_every_module_has_a_layer():
    missing = [m for m in _graph() if m != "featherface" and _layer(m) is None]
    assert not missing, f"add these to LAYERS (and docs/ARCHITECTURE.md): {missing}"


def test_imports_only_go_down():
    wrong = [f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})"
             for m, deps in _graph().items() if _layer(m) is not None
             for d in deps if (_layer(d) is None or _layer(d) > _layer(m)) and (m, d) not in ALLOWED_UP]
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
    assert "featherface.core.detector" in graph["featherface.apps.jobs"]
    assert "featherface.models.featherface" in graph["featherface.training.engine"]
    assert "featherface.cli.train" in graph["featherface.cli"]  # from . import ... inside a function
    assert "featherface.export.torch_runner" in graph["featherface.core.detector"]  # lazy import in from_pretrained


def _names_package(path: Path, package: str) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == package for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == package:
            return True
    return False


TORCH_FREE = ("featherface.core", "featherface.apps")


def test_core_and_apps_never_import_torch_or_the_torch_side():
    """No module of the core or the applications names torch or OpenCV (neither is in the base
    install), and none imports a module outside them except through ALLOWED_UP (which checks that
    torch is installed first)."""
    named = [p.name for d in ("core", "apps") for p in (PKG / d).glob("*.py")
             if _names_package(p, "torch") or _names_package(p, "cv2")]
    assert not named
    graph = _graph()
    outside = [(m, d) for m, deps in graph.items() if m.startswith(TORCH_FREE)
               for d in deps if not d.startswith(TORCH_FREE) and (m, d) not in ALLOWED_UP]
    assert not outside, outside


TORCH_BLOCKED = """
import sys
sys.modules["torch"] = None  # any import of torch now raises ImportError
sys.modules["cv2"] = None  # and of OpenCV: the base install has neither
import importlib, pkgutil
import featherface, featherface.core, featherface.apps, featherface.cli
for package in (featherface.core, featherface.apps):
    for m in pkgutil.iter_modules(package.__path__):
        if m.name not in ("raydata", "serve"):  # the ray and serve extras' modules (on the same core)
            importlib.import_module(package.__name__ + "." + m.name)
from featherface import FaceDetector
from featherface.core.files import read_image
from featherface.core.weights import EXAMPLE_IMAGE
faces = FaceDetector.from_pretrained("nano").detect(read_image(EXAMPLE_IMAGE))
assert len(faces) == 1, faces
from featherface.cli import main
assert main(["detect", "--example", "--output", sys.argv[1]]) == 0
assert main(["anonymize", "--example", "--output", sys.argv[1] + "_anon"]) == 0
print("torch-free ok")
"""


def test_detect_and_anonymize_run_with_torch_blocked(tmp_path):
    """The light install's promise, checked in a fresh interpreter where importing torch or
    OpenCV fails."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", TORCH_BLOCKED, str(tmp_path / "out")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "torch-free ok" in r.stdout


def test_the_command_line_does_not_import_torch_where_it_is_installed(tmp_path):
    """Torch installed (the [train] extra) must not slow every command: building the parser, which
    registers `train` and `distill`, and running `anonymize` leave torch and OpenCV unimported."""
    import subprocess
    import sys

    code = ("import sys\nfrom featherface.cli import main\n"
            f"assert main(['-q', 'anonymize', '--example', '--output', {str(tmp_path / 'out')!r}]) == 0\n"
            "print(sorted(m for m in ('torch', 'cv2') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "[]"
