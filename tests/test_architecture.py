"""The package's module structure: no import cycles, between modules or between layers.

The graph is built from the source with :mod:`ast`, without importing anything. Only
imports executed when a module is imported count: imports inside functions (deferred on
purpose) and under ``if TYPE_CHECKING:`` (type hints only) are left out.

A *layer* is a top-level module or subpackage (``fusion_psro.games``,
``fusion_psro.validation``, ...). Layers must not form a cycle either: a module of
``games`` that imports a module which imports ``games.compiled`` is no module-level cycle,
but ``games`` can then no longer be used without what sits above it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "fusion_psro"
SOURCE_ROOT = Path(__file__).resolve().parent.parent / "src"


def module_files(root: Path = SOURCE_ROOT) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__.py``)."""
    modules = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking_guard(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(tree: ast.Module, *, in_functions: bool = False):
    """Import statements run when the module is imported (not in functions, not type-only);
    with ``in_functions``, those inside functions too."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and not in_functions:
            continue
        elif isinstance(node, ast.If) and _is_type_checking_guard(node):
            pending.extend(node.orelse)
        else:
            pending.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt))


def _imported_modules(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: dict) -> set[str]:
    """Package modules named by one import statement, resolved to the deepest existing module."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            anchor = module.split(".")
            anchor = anchor if is_package else anchor[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        # ``from package import name``: an edge to the submodule when ``name`` is one.
        targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    found = set()
    for target in targets:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target:
            found.add(target)
    return found


def import_graph(root: Path = SOURCE_ROOT) -> dict[str, set[str]]:
    """Module -> the package modules it imports at module level."""
    modules = module_files(root)
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        edges = set()
        for node in _module_level_imports(tree):
            edges |= _imported_modules(node, module, is_package, modules)
        edges.discard(module)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None if it is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def layer_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """``graph`` with every module replaced by its layer (``fusion_psro.<first name>``)."""
    def layer(module: str) -> str:
        return ".".join(module.split(".")[:2])

    layers: dict[str, set[str]] = {}
    for module, targets in graph.items():
        layers.setdefault(layer(module), set()).update(layer(t) for t in targets if layer(t) != layer(module))
    return layers


def _graph(edges: dict[str, list[str]]) -> dict[str, set[str]]:
    return {node: set(targets) for node, targets in edges.items()}


def test_find_cycle_reports_the_cycle():
    assert find_cycle(_graph({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]})) == ["a", "b", "c", "a"]
    assert find_cycle(_graph({"a": ["b"], "b": ["c"], "c": [], "d": ["a", "c"]})) is None


def test_import_graph_follows_the_rules(tmp_path):
    package = tmp_path / PACKAGE
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from fusion_psro.sub import leaf\n")
    (package / "sub" / "leaf.py").write_text("import numpy\n")
    (package / "core.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from fusion_psro import sub\n"
        "from .sub.leaf import x\n"
        "if TYPE_CHECKING:\n    from fusion_psro import top\n"
        "def f():\n    from fusion_psro import top\n"
        "try:\n    import fusion_psro.other\nexcept ImportError:\n    pass\n"
    )
    (package / "top.py").write_text("from fusion_psro.core import y\n")
    (package / "other.py").write_text("")
    graph = import_graph(tmp_path)
    assert graph["fusion_psro.core"] == {"fusion_psro.sub", "fusion_psro.sub.leaf", "fusion_psro.other"}
    assert graph["fusion_psro.sub"] == {"fusion_psro.sub.leaf"}
    assert graph["fusion_psro.top"] == {"fusion_psro.core"}
    assert find_cycle(graph) is None
    assert layer_graph(graph)["fusion_psro.top"] == {"fusion_psro.core"}

    (package / "sub" / "leaf.py").write_text("from fusion_psro import top\n")
    cycle = find_cycle(import_graph(tmp_path))
    assert cycle == ["fusion_psro.core", "fusion_psro.sub", "fusion_psro.sub.leaf", "fusion_psro.top", "fusion_psro.core"]


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "fusion_psro.games.compiled" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_layers_have_no_import_cycle():
    layers = layer_graph(import_graph())
    assert "fusion_psro.validation" in layers
    cycle = find_cycle(layers)
    assert cycle is None, "import cycle between layers: " + " -> ".join(cycle)


#: Longest function body allowed, in lines, docstring excluded: a function fits on a screen.
MAX_FUNCTION_LINES = 80


def _function_lengths(root: Path = SOURCE_ROOT):
    """``(place, name, lines)`` of every function and method, its docstring not counted."""
    for path in sorted((root / PACKAGE).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = node.body[0]
                docstring = isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
                    and isinstance(first.value.value, str)
                start = first.end_lineno + 1 if docstring and len(node.body) > 1 else node.lineno
                yield f"{path.relative_to(root)}:{node.lineno}", node.name, node.end_lineno - start + 1


def test_no_function_is_longer_than_a_screen():
    long = [f"{place} {name} ({lines} lines)" for place, name, lines in _function_lengths() if lines > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_length_check_sees_long_functions(tmp_path):
    module = tmp_path / PACKAGE / "long.py"
    module.parent.mkdir()
    module.write_text("def f():\n    '''doc'''\n" + "    x = 1\n" * (MAX_FUNCTION_LINES + 1))
    assert [lines for _, _, lines in _function_lengths(tmp_path)] == [MAX_FUNCTION_LINES + 1]


def _loads_pytorch(command: list[str]) -> bool:
    """Whether ``fusion-psro COMMAND`` imports PyTorch, run in a fresh interpreter."""
    import subprocess
    import sys

    code = ("import sys\nfrom fusion_psro.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, file=sys.stderr)" % command)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    last = result.stderr.strip().splitlines()[-1]
    assert last in ("True", "False"), (command, result.stderr[-500:])
    return last == "True"


def test_commands_that_do_not_train_do_not_load_pytorch(tmp_path):
    """A run of the exact oracle (and its resumption), ``evaluate``, ``report``, ``plot``,
    ``compile`` and their help import no torch: they start fast and need no PyTorch."""
    runs = sorted(str(p) for p in (SOURCE_ROOT.parent / "results" / "leduc-psd" / "runs").iterdir())
    exact = str(tmp_path / "exact")
    for command in (["report", "--help"], ["plot", "--help"], ["compile", "--help"], ["--help"], ["run", "--help"],
                    ["run", "--game", "kuhn_poker", "--iterations", "2", "--out", exact, "--quiet"],
                    ["run", "--resume", exact, "--iterations", "3", "--quiet"],
                    ["evaluate", "--game", "kuhn_poker"], ["report", exact, *runs],
                    ["plot", exact, "--out", str(tmp_path / "curves")]):
        assert not _loads_pytorch(command), command
    assert (tmp_path / "curves.svg").exists() and len(Path(exact, "metrics.jsonl").read_text().splitlines()) == 3
    # The check itself: a command that trains a network does load it.
    assert _loads_pytorch(["run", "--game", "kuhn_poker", "--oracle", "pg", "--steps", "2", "--oracle-option",
                           "hidden_sizes=[4]", "--iterations", "1", "--out", str(tmp_path / "pg"), "--quiet"])



def deferred_import_graph(root: Path = SOURCE_ROOT) -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere, imports inside functions included."""
    modules = module_files(root)
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges = set()
        for node in _module_level_imports(tree, in_functions=True):
            edges |= _imported_modules(node, module, path.name == "__init__.py", modules)
        edges.discard(module)
        graph[module] = edges
    return graph


def test_the_deferred_import_graph_sees_imports_inside_functions(tmp_path):
    package = tmp_path / PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def f():\n    from fusion_psro import high\n")
    (package / "high.py").write_text("from fusion_psro import low\n"
                                     "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fusion_psro import hint\n")
    (package / "hint.py").write_text("from fusion_psro import high\n")
    assert find_cycle(import_graph(tmp_path)) is None
    graph = deferred_import_graph(tmp_path)
    assert graph["fusion_psro.high"] == {"fusion_psro.low"}
    assert find_cycle(graph) == ["fusion_psro.high", "fusion_psro.low", "fusion_psro.high"]


def test_the_package_has_no_import_cycle_even_through_deferred_imports():
    """An import deferred into a function hides a cycle from the module-level check, not from this one."""
    graph = deferred_import_graph()
    assert "fusion_psro.psro.executors" in graph["fusion_psro.psro.loop"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle through deferred imports: " + " -> ".join(cycle)
    cycle = find_cycle(layer_graph(graph))
    assert cycle is None, "import cycle between layers through deferred imports: " + " -> ".join(cycle)


def _hasattr_calls(paths):
    """``(place, source line)`` of every ``hasattr(...)`` call in ``paths``."""
    for path in paths:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "hasattr":
                yield f"{path}:{node.lineno}", ast.get_source_segment(path.read_text(), node)


def test_the_loop_and_the_experiments_declare_hooks_instead_of_probing_with_hasattr(tmp_path):
    """psro/ and experiments/ call the hooks that PolicySpace, MetaGame and the components declare
    (with defaults); ``hasattr`` would attach behaviour by duck typing."""
    layers = [SOURCE_ROOT / PACKAGE / "psro", SOURCE_ROOT / PACKAGE / "experiments"]
    found = list(_hasattr_calls(p for layer in layers for p in sorted(layer.rglob("*.py"))))
    assert not found, f"hasattr in psro/ or experiments/: {found}"
    probe = tmp_path / "probe.py"
    probe.write_text("x = 1\nif hasattr(x, 'real'):\n    pass\n")
    assert [line for _, line in _hasattr_calls([probe])] == ["hasattr(x, 'real')"]
