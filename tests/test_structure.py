"""The layout claims of DESIGN.md, checked: no import circle (lazy imports inside functions count too),
layers read one way, and no module much over 300 lines."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "robustgen"
MAX_LINES = 320  # "about 300 lines at most"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in ROOT.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                candidates = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            deps |= {c for c in candidates if c in modules and c != name}
        graph[name] = deps
    return graph


def _cycle(graph):
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if m.startswith(n + ".") or n.startswith(m + ".") and m.count(".") == 0:
                continue  # a package and its own modules (``from . import x`` in __init__)
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_no_import_circle():
    graph = _graph()
    # the package root re-exports the public API; everything else must not import it
    graph = {n: {d for d in deps if d != "robustgen"} for n, deps in graph.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


LOWER = {  # a layer never imports the layers above it
    "robustgen.model": ("robustgen.training", "robustgen.detectors", "robustgen.attacks", "robustgen.evaluation",
                        "robustgen.reports", "robustgen.cli"),
    "robustgen.data": ("robustgen.model", "robustgen.training", "robustgen.detectors", "robustgen.attacks",
                       "robustgen.evaluation", "robustgen.reports", "robustgen.cli"),
    "robustgen.training": ("robustgen.detectors", "robustgen.attacks", "robustgen.evaluation", "robustgen.reports",
                           "robustgen.cli"),
    "robustgen.detectors": ("robustgen.training", "robustgen.attacks", "robustgen.evaluation", "robustgen.reports",
                            "robustgen.cli"),
    "robustgen.attacks": ("robustgen.training", "robustgen.evaluation", "robustgen.reports", "robustgen.cli"),
    "robustgen.evaluation": ("robustgen.reports", "robustgen.cli"),
    "robustgen.reports": ("robustgen.cli",),
}


@pytest.mark.parametrize("layer", sorted(LOWER))
def test_layers_read_one_way(layer):
    bad = [(n, d) for n, deps in _graph().items() if n == layer or n.startswith(layer + ".")
           for d in deps if any(d == up or d.startswith(up + ".") for up in LOWER[layer])]
    assert not bad, bad


def test_modules_are_small():
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_only_reports_import_matplotlib_and_only_cli_prints():
    for path in ROOT.rglob("*.py"):
        text = path.read_text()
        rel = path.relative_to(ROOT).as_posix()
        if "matplotlib" in text and "import" in text and not rel.startswith("reports/"):
            tree = ast.parse(text)
            mods = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
            mods += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
            assert not any(m.startswith("matplotlib") for m in mods), rel
        if not rel.startswith("cli/"):
            calls = [n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Call)
                     and isinstance(n.func, ast.Name) and n.func.id == "print"]
            assert not calls, f"{rel} prints"
