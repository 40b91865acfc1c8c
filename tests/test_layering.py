"""The packages keep to their layers, and no module needs an import inside a function to dodge a cycle.

Data flows one way: gateway → menus / notifications → models → config; `menus` may use `notifications`, never the
reverse; the domain packages know nothing of Flask, the gateway or the development tools. The tests read every
module's source with `ast` (so a new module is checked without being listed), and import every module in fresh
interpreters, in random orders, to prove that no order of imports trips over a cycle.
"""

from __future__ import annotations

import ast
import random
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED_PACKAGES = ("menus", "notifications", "models", "config", "devtools", "gateway")
# Our top-level packages and modules: an import of any other name is a library's.
OURS = frozenset({*CHECKED_PACKAGES, "tests", "bench", "migrations", "wsgi"})
DOMAIN_PACKAGES = ("menus", "notifications", "models", "config")
# What each package must never import, beyond what every domain package must not (FORBIDDEN_IN_DOMAIN).
FORBIDDEN_IN_DOMAIN = ("flask", "gateway", "devtools")
FORBIDDEN = {
    "notifications": ("menus",),
    "models": ("notifications", "menus"),
    "config": tuple(sorted(OURS - {"config"})),
}
# Calls that import a module by name at run time: as much an import inside a function as the statement is.
DYNAMIC_IMPORTS = frozenset({"import_module", "__import__"})
# Random orders in which a fresh interpreter imports every module; a failure names its seed, to run it again.
RANDOM_ORDERS = 4
IMPORT_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the module named by the statement, dotted (for `from a import b`: `a.b` if that is a module)
    line: int
    in_function: bool
    type_checking_only: bool


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def our_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in CHECKED_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """Every import of `module`, noting whether it sits in a function body or under `if TYPE_CHECKING`."""
    found: list[Import] = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_function = True
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, in_function, True)
            for child in node.orelse:
                visit(child, in_function, type_checking)
            return
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        elif isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in DYNAMIC_IMPORTS:
                targets = ["<dynamic>"]
        for target in targets:
            found.append(Import(module, target, getattr(node, "lineno", 0), in_function, type_checking))
        for child in ast.iter_child_nodes(node):
            visit(child, in_function, type_checking)

    visit(ast.parse(path.read_text(), filename=str(path)), False, False)
    return found


@cache
def all_imports() -> tuple[Import, ...]:
    modules = our_modules()
    return tuple(found for module, path in modules.items() for found in imports_of(module, path, modules))


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_no_import_sits_inside_a_function():
    inside = [
        f"{found.module}:{found.line} imports {found.target}"
        for found in all_imports()
        if found.in_function and not found.type_checking_only
    ]
    assert inside == [], "imports inside functions (a missing module, or a cycle dodged):\n" + "\n".join(inside)


def test_each_package_imports_only_the_layers_below_it():
    crossings = []
    for found in all_imports():
        top = found.module.split(".")[0]
        forbidden = FORBIDDEN.get(top, ())
        if top in DOMAIN_PACKAGES:
            forbidden += FORBIDDEN_IN_DOMAIN
        crossings += [
            f"{found.module}:{found.line} imports {found.target}"
            for package in forbidden
            if _within(found.target, package)
        ]
    assert crossings == [], "imports against the layers:\n" + "\n".join(crossings)


def test_the_module_level_imports_have_no_cycle():
    """Read from the source: a cycle Python happens to survive today breaks with the next import moved."""
    graph: dict[str, set[str]] = {module: set() for module in our_modules()}
    for found in all_imports():
        if not (found.in_function or found.type_checking_only) and found.target in graph:
            graph[found.module].add(found.target)
    cycles = []
    state: dict[str, str] = {}
    path: list[str] = []

    def walk(module: str) -> None:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(" → ".join([*path[path.index(target) :], target]))
            elif target not in state:
                walk(target)
        path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            walk(module)
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


# Run in a fresh interpreter: import every module, in the order given.
IMPORT_IN_ORDER = """
import importlib, sys
for name in {order!r}:
    try:
        importlib.import_module(name)
    except Exception as exc:
        sys.exit(f"importing {{name}} failed: {{exc!r}}")
"""


def test_every_module_imports_in_a_fresh_interpreter_in_random_orders():
    names = sorted(our_modules())
    for seed in random.sample(range(1_000_000), RANDOM_ORDERS):
        order = names[:]
        random.Random(seed).shuffle(order)
        result = subprocess.run(
            [sys.executable, "-W", "error", "-c", IMPORT_IN_ORDER.format(order=order)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=IMPORT_TIMEOUT_SECONDS,
        )
        assert result.returncode == 0, f"order seed {seed}: {result.stderr[-2000:]}"
