"""The structure of the library, read from its source with ``ast`` (every import, those inside functions included).

Layers, lowest first; a module imports only from its own layer or lower ones, and no import goes round in a circle
(between modules, or between packages):

0. shared helpers: ``defi1.boxes``, ``images``, ``files``, ``errors``, ``environment``, ``results``, ``figures``,
   ``runs``, ``layers``, ``keras_runtime``, ``extras``, ``weights``, ``fingerprint``, ``choices``;
1. the models: ``defi1.yolo``, ``defi1.classification``;
2. what is built on them: ``defi1.detection`` (Part 2), ``defi1.realtime`` (Part 3);
3. applications: ``defi1.predict``, ``defi1.split``, ``defi1.demo``, ``defi1.collect``, ``defi1.notebooks``, ``report``,
   ``defi1.grading``;
4. the command line: ``defi1.cli``, ``defi1.__main__``.

``import defi1`` (the package itself, which registers the Keras layers) is allowed anywhere. Also checked: the command
line and the light helpers import no deep-learning library when they are imported, library modules stay under
about 600 lines and command-line handlers under about 40, and every ``pytest.raises`` of the tests names the
message it expects.
"""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_agnostic  # source files only

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "defi1"

SHARED = {"boxes", "images", "files", "errors", "environment", "results", "figures", "runs", "layers", "keras_runtime",
          "extras", "weights", "fingerprint", "choices"}
APPLICATIONS = {"predict", "split", "demo", "collect", "notebooks", "report"}
PACKAGE_LAYERS = {"yolo": 1, "classification": 1, "detection": 2, "realtime": 2, "grading": 3, "cli": 4}
LAYER_NAMES = ["shared helpers", "models (yolo, classification)", "detection and realtime", "applications",
               "command line"]
HEAVY = ("keras", "tensorflow", "jax", "torch")
#: Modules the command line's --help and start-up may import: they must not pull in a deep-learning library.
LIGHT = {"defi1.boxes", "defi1.images", "defi1.files", "defi1.errors", "defi1.environment", "defi1.results",
         "defi1.figures", "defi1.collect", "defi1.classification.catalog", "defi1.keras_runtime", "defi1.extras",
         "defi1.weights", "defi1.notebooks", "defi1.report", "defi1.choices"}
MAX_MODULE_LINES = 600
MAX_HANDLER_LINES = 40


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    """The layer of a defi1 module (see the module docstring)."""
    parts = module.split(".")
    if len(parts) == 2 and parts[1] in SHARED:
        return 0
    if len(parts) == 2 and parts[1] in APPLICATIONS:
        return 3
    if parts[1] == "__main__":
        return 4
    if parts[1] in PACKAGE_LAYERS:
        return PACKAGE_LAYERS[parts[1]]
    raise KeyError(module)


def imports_of(module: str):
    """``(imported module, line, module_level, enclosing function)`` for every import of ``module``; names are
    resolved to the deepest known module (``from defi1.yolo import model`` is ``defi1.yolo.model``)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, function is None, function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[:len(package.split(".")) - child.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in child.names:
                    target = f"{base}.{alias.name}"
                    found.append((target if target in MODULES else base, child.lineno, function is None, function))
            visit(child, inner)

    visit(tree, None)
    return found


def library_edges():
    """``{module: {imported defi1 module: first line}}`` over every import, the package root ``defi1`` left out."""
    edges = {}
    for module in MODULES:
        targets = edges.setdefault(module, {})
        for target, line, _, _ in imports_of(module):
            if target.startswith("defi1.") and target in MODULES:
                targets.setdefault(target, line)
    return edges


def cycles(graph):
    """Every strongly connected component of more than one node (an import circle), as sorted lists."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def connect(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def group(module: str) -> str:
    """The package of a module (``defi1.yolo.model`` -> ``defi1.yolo``); a top-level module is its own group."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or module in ("defi1.cli", "defi1.yolo", "defi1.detection",
                                                                "defi1.realtime", "defi1.classification") else module


def test_every_module_has_a_layer():
    unplaced = [module for module in MODULES if module != "defi1" and not _has_layer(module)]
    assert unplaced == [], f"add these modules to a layer of tests/test_structure.py: {unplaced}"


def _has_layer(module):
    try:
        layer(module)
    except KeyError:
        return False
    return True


def test_no_import_reaches_a_higher_layer():
    upward = [f"{MODULES[module].relative_to(ROOT)}:{line}: {module} ({LAYER_NAMES[layer(module)]}) imports "
              f"{target} ({LAYER_NAMES[layer(target)]})"
              for module, targets in library_edges().items() if module != "defi1"
              for target, line in targets.items() if target != "defi1" and layer(target) > layer(module)]
    assert upward == []


def test_the_layers_reject_the_imports_this_consolidation_removed():
    """The guard itself: the upward imports that existed before (shared helpers importing yolo, yolo importing
    detection) are what it reports."""
    assert layer("defi1.images") < layer("defi1.yolo.detector") < layer("defi1.detection.labels")
    assert layer("defi1.realtime.video") < layer("defi1.predict") < layer("defi1.cli.detect_infer")


def test_no_import_circle_between_modules():
    assert cycles(library_edges()) == []


def test_no_import_circle_between_packages():
    graph = {}
    for module, targets in library_edges().items():
        for target in targets:
            if group(target) != group(module):
                graph.setdefault(group(module), set()).add(group(target))
    assert cycles(graph) == []


def test_command_line_and_light_helpers_import_no_deep_learning_library():
    cli_entry_imports = {}
    for module in MODULES:
        if module.startswith("defi1.cli"):
            # Module level and register() (what --help runs); handlers may import anything.
            cli_entry_imports[module] = [target for target, _, module_level, function in imports_of(module)
                                         if module_level or function == "register"]
    heavy = []
    for module in sorted(LIGHT | set(cli_entry_imports)):
        seen, pending = set(), list(cli_entry_imports.get(module, [])) + [module]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            if current.split(".")[0] in HEAVY:
                heavy.append(f"{module} imports {current} on import")
            if current in MODULES and current != "defi1":
                pending.extend(target for target, _, module_level, _ in imports_of(current) if module_level)
    assert heavy == []


def test_library_modules_stay_small():
    long = {module: count for module, path in MODULES.items()
            if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}, f"split these modules by responsibility (over {MAX_MODULE_LINES} lines): {long}"


def test_command_line_handlers_are_short():
    long = {}
    for module, path in MODULES.items():
        if not module.startswith("defi1.cli"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        handlers = {keyword.value.id for node in ast.walk(tree) if isinstance(node, ast.Call)
                    for keyword in node.keywords if keyword.arg == "handler" and isinstance(keyword.value, ast.Name)}
        assert handlers or module in ("defi1.cli", "defi1.cli.__main__"), f"{module}: no handler found"
        for name in handlers:
            node = functions[name]
            if node.end_lineno - node.lineno + 1 > MAX_HANDLER_LINES:
                long[f"{module}.{name}"] = node.end_lineno - node.lineno + 1
    assert long == {}, f"move the logic of these handlers into the library: {long}"


def test_every_pytest_raises_names_the_message_it_expects():
    vague = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "raises"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "pytest"
                    and not any(keyword.arg == "match" for keyword in node.keywords)):
                vague.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert vague == []
