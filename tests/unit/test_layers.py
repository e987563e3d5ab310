"""The import structure of the library: layers, no cycle, backends as plug-ins.

Every ``import`` of every module of ``glancesync/`` is read from its source
(function-level imports included; imports under ``if TYPE_CHECKING:`` are
left out: they never run). A module may import only modules of its layer or
of a lower one, never in a cycle; only a backend's own package, the
registry and the demo import a backend's modules; nothing but the scripts
imports the CLI.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "glancesync"

#: Layers, lowest first: a module imports from its layer or lower ones.
LAYERS = [
    ["glancesync.errors"],
    ["glancesync.image", "glancesync.condition", "glancesync.progress", "glancesync.lock*",
     "glancesync.bandwidth",
     "glancesync.stopping",
     "glancesync.runlog", "glancesync.redaction", "glancesync.safenames",
     "glancesync.filemodes", "glancesync.readback"],
    ["glancesync.integrity", "glancesync.options", "glancesync.convert",
     "glancesync.pacing"],
    ["glancesync.regions"],
    ["glancesync.backends.base"],
    ["glancesync.backends.*"],  # each backend's package
    ["glancesync.backends"],  # the registry
    ["glancesync.config", "glancesync.selection", "glancesync.strategy"],
    ["glancesync.plan.model", "glancesync.retry", "glancesync.transfer", "glancesync.report",
     "glancesync.sharing", "glancesync.serverside"],
    ["glancesync.plan.*"],  # the planner's concerns
    ["glancesync.plan"],  # make_plan: the concerns in the order of the SPEC
    ["glancesync.scope", "glancesync.throughput", "glancesync.listing"],
    ["glancesync.executor.results", "glancesync.executor.actions"],
    ["glancesync.executor.*"],  # the executor's parts: steps, the upload path
    ["glancesync.executor", "glancesync.backups"],
    ["glancesync.watch*"],  # continuous propagation: drives the facade through a protocol
    ["glancesync.facade"],
    ["glancesync.views*"],  # the outputs: pure functions of the facade's results
    ["glancesync", "glancesync.cli", "glancesync.demo", "glancesync.testbed*"],
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> int:
    for index, layer in enumerate(LAYERS):
        for pattern in layer:
            if module == pattern or (pattern.endswith("*") and module.startswith(pattern[:-1])
                                     and module != "glancesync.backends"
                                     and module != "glancesync.backends.base"):
                return index
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return skipped


def imports_of(module: str) -> set[str]:
    """The glancesync modules that ``module`` imports."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    skipped = _type_checking_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [name if name in MODULES else node.module for name in names]
        else:
            continue
        found.update(name for name in names if name in MODULES and name != module)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_from_a_higher_layer(module):
    higher = [name for name in GRAPH[module] if layer_of(name) > layer_of(module)]
    assert higher == [], f"{module} imports from higher layers: {higher}"


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for name in sorted(GRAPH[module]):
            if state.get(name) == 1:
                cycle = path[path.index(name):] + [name]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if name not in state:
                visit(name, path + [name])
        state[module] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])


def component(module: str) -> str:
    """The unit a module belongs to: a top module, a sub-package, each backend's package."""
    parts = module.split(".")
    depth = 3 if parts[:2] == ["glancesync", "backends"] and len(parts) > 2 else 2
    return ".".join(parts[:depth])


def test_no_cycle_between_packages():
    """Importing a package's module runs the package first: a cycle between
    packages (e.g. a store importing an adapters package that imports the
    store) is a cycle too."""
    graph: dict[str, set[str]] = {}
    for module, names in GRAPH.items():
        graph.setdefault(component(module), set()).update(
            component(name) for name in names if component(name) != component(module))
    done: set[str] = set()

    def visit(unit: str, path: list[str]) -> None:
        for name in sorted(graph.get(unit, ())):
            assert name not in path, "cycle: " + " -> ".join(path[path.index(name):] + [name])
            if name not in done:
                visit(name, path + [name])
        done.add(unit)

    for unit in sorted(graph):
        visit(unit, [unit])


def _backend_package(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) >= 3 and parts[:2] == ["glancesync", "backends"] and parts[2] != "base":
        return ".".join(parts[:3])
    return None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_registry_knows_the_backends(module):
    """Adding a backend touches no core module: none imports a backend's modules."""
    own = _backend_package(module)
    for name in GRAPH[module]:
        package = _backend_package(name)
        if package is None or package == own:
            continue
        assert module in ("glancesync.backends", "glancesync.demo"), (
            f"{module} imports {name}: only the registry may know the backends")


def test_the_library_never_imports_the_cli():
    assert [m for m, names in GRAPH.items() if "glancesync.cli" in names] == []


def test_the_check_sees_imports():
    """The graph is not empty by mistake: a few known edges."""
    assert "glancesync.backends.base" in GRAPH["glancesync.retry"]
    assert "glancesync.backends.openstack.keystone" in GRAPH["glancesync.backends.openstack"]
    assert "glancesync.config" not in GRAPH["glancesync.regions"]  # type-only import


# -- the planner by concern ---------------------------------------------------------

#: The planner's concerns (``glancesync/plan/<name>.py``), an import of one by
#: another only from a later one to an earlier one: never a cycle.
PLAN_CONCERNS = ["metadata", "uploads", "conflicts", "matching", "ami", "obsolete",
                 "leftovers", "lifecycle", "identity", "validation", "waves",
                 "endoflife"]


def test_the_plan_s_data_and_context_import_no_concern():
    """The plan's data is apart from planning; the context knows no concern."""
    assert not {m for m in GRAPH["glancesync.plan.model"] if m.startswith("glancesync.plan")}
    assert {m for m in GRAPH["glancesync.plan.context"] if m.startswith("glancesync.plan")} == {
        "glancesync.plan.model"}


def test_the_plan_concerns_import_each_other_in_one_direction_only():
    package = {m for m in MODULES if m.startswith("glancesync.plan.")}
    listed = {f"glancesync.plan.{name}" for name in PLAN_CONCERNS}
    assert package - listed == {"glancesync.plan.model", "glancesync.plan.context"}, (
        "a new module of glancesync/plan/: add it to PLAN_CONCERNS")
    for index, name in enumerate(PLAN_CONCERNS):
        later = {f"glancesync.plan.{other}" for other in PLAN_CONCERNS[index:]}
        wrong = GRAPH[f"glancesync.plan.{name}"] & later
        assert not wrong, f"glancesync.plan.{name} imports {sorted(wrong)} (a later concern)"


def test_each_plan_concern_has_its_own_unit_tests():
    tests = Path(__file__).resolve().parent / "plan"
    for name in PLAN_CONCERNS + ["context"]:
        assert (tests / f"test_{name}.py").is_file(), f"tests/unit/plan/test_{name}.py"


def test_the_plan_is_composed_in_one_place_of_steps_in_the_spec_s_order():
    from glancesync import plan
    modules = [step.__module__.rsplit(".", 1)[-1] for step in plan.STEPS]
    assert modules[-1] == "lifecycle", "removal steps are planned last"
    assert modules.index("ami") > modules.index("matching")
    used = set(modules) | {"uploads", "conflicts", "metadata"}  # called by matching
    used |= {"waves"}  # over the plans of a run, called by the facade
    assert used == set(PLAN_CONCERNS)


# -- the executor by concern ----------------------------------------------------------

#: The adapter calls that change a region.
MUTATIONS = {"create_image", "upload_data", "update_image", "delete_image", "deactivate_image",
             "reactivate_image", "add_member", "remove_member", "import_image"}
#: The only functions of the executor that call them directly: each runs only
#: inside a change the choke point let through (``RegionActions.act``).
DIRECT_CALLERS = {"NewImage.create", "Stream._send", "Stream._send_chunks"}


def _functions(tree: ast.AST, prefix: str = ""):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{prefix}{node.name}", node


def test_every_change_of_a_region_goes_through_the_choke_point():
    """In the executor, a mutating adapter call is passed to ``act``, not made:
    only the functions of DIRECT_CALLERS (run inside an ``act``) call one."""
    found = set()
    for module, path in MODULES.items():
        if not module.startswith("glancesync.executor"):
            continue
        for name, function in _functions(ast.parse(path.read_text(encoding="utf-8"))):
            for node in ast.walk(function):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in MUTATIONS):
                    found.add(name)
    assert found == DIRECT_CALLERS


# -- no long function, no type-only import from above ------------------------------------

#: Lines a function may have (docstring included), outside the test bed.
LONGEST_FUNCTION = 60


def test_no_function_is_longer_than_sixty_lines():
    long = []
    for module, path in MODULES.items():
        if module.startswith("glancesync.testbed"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > LONGEST_FUNCTION:
                    long.append(f"{module}.{node.name}: {lines} lines")
    assert long == [], "split these functions: " + "; ".join(long)


def test_not_even_a_type_only_import_goes_up_the_layers():
    """An ``if TYPE_CHECKING:`` import from a higher layer is a dependency the
    layers hide: name what is needed with a Protocol of the lower layer instead."""
    upward = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)):
                continue
            for child in (c for stmt in node.body for c in ast.walk(stmt)):
                if isinstance(child, ast.ImportFrom) and child.module in MODULES \
                        and layer_of(child.module) > layer_of(module):
                    upward.append(f"{module} -> {child.module}")
    assert upward == []
