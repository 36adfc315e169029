"""The shape of the shipped code (`graphql_api/`, `ledger/`, `jobs/`), checked from its source.

- No import cycle. The import graph is built statically with `ast`: every `import` and
  `from ... import` anywhere in a module counts, inside functions and under `TYPE_CHECKING` too (a
  function-level import that dodges a cycle is still the cycle). Relative imports are resolved, and
  `from package import module` is an edge to that module. `import a.b.c` runs `a/__init__` and
  `a/b/__init__` first, so it is an edge to those packages too, unless the importer sits inside
  them (a package's `__init__` that gathers its own submodules, like `mutations/__init__.py`
  merging the mixins, is already running when they import each other). Strongly connected
  components (Tarjan) of more than one module, or a module importing itself, fail the test, each
  shown with a shortest cycle in it and the lines that make that cycle.
  `test_the_checker_finds_a_deliberate_cycle` feeds the same checker a two-module cycle, so the
  check cannot pass by finding nothing.
- No `strawberry.lazy` (nor `LazyType`) in `graphql_api/`: with no cycle there is nothing to dodge.
- No module over 400 lines and no function (method, nested function) over 70 lines, unless it
  carries a one-line reason of this fixed form:

      # long: <why it is better in one piece>

  For a function, on the line right above its `def` (above its decorators, if it has any) or on a
  line between its `def` and the first statement of its body. For a module, on its first line or on
  the line right after its docstring. The reason may not be empty.
- No shipped module imports `tests` (a benchmark or a fixture is not part of the product).
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("graphql_api", "ledger", "jobs")
MODULE_LINES_MAX = 400
FUNCTION_LINES_MAX = 70
LONG_REASON = re.compile(r"^\s*# long: \S")


@dataclass(frozen=True, slots=True)
class Module:
    name: str
    path: Path
    is_package: bool  # an __init__.py

    @property
    def package(self) -> str:
        """The package its relative imports start from."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


@dataclass(frozen=True, slots=True)
class Import:
    importer: str
    imported: str  # as written, made absolute
    names: tuple[str, ...]  # for `from x import a, b`: a and b
    line: int


def modules(root: Path, packages: Sequence[str]) -> dict[str, Module]:
    """Every module of `packages` under `root`, by dotted name."""
    found: dict[str, Module] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            found[".".join(parts)] = Module(".".join(parts), path, is_package)
    return found


def imports(module: Module) -> Iterator[Import]:
    """Every import statement in the module, wherever it sits, with relative ones made absolute."""
    tree = ast.parse(module.path.read_text(), str(module.path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module.name, alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.package.split(".")
                base = base[: len(base) - (node.level - 1)]
                imported = ".".join([*base, node.module] if node.module else base)
            else:
                imported = node.module or ""
            yield Import(module.name, imported, tuple(alias.name for alias in node.names), node.lineno)


def _known(name: str, known: dict[str, Module]) -> str | None:
    """The longest prefix of a dotted name that is one of our modules."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in known:
            return prefix
    return None


def import_graph(known: dict[str, Module]) -> dict[str, dict[str, int]]:
    """module -> {module it imports: the first line that does}, among `known` only."""
    graph: dict[str, dict[str, int]] = {name: {} for name in known}
    for module in known.values():
        for statement in imports(module):
            targets = []
            for name in statement.names or ("",):
                submodule = f"{statement.imported}.{name}"
                if name and submodule in known:  # from package import module
                    targets.append(submodule)
                elif (target := _known(statement.imported, known)) is not None:
                    targets.append(target)
            for target in targets:
                graph[module.name].setdefault(target, statement.line)
                for package in _packages_run_first(target, module, known):
                    graph[module.name].setdefault(package, statement.line)
    return graph


def _packages_run_first(target: str, importer: Module, known: dict[str, Module]) -> list[str]:
    """The packages whose `__init__` importing `target` runs first, less those the importer is in."""
    own = importer.name if importer.is_package else importer.package
    parts = target.split(".")
    above = (".".join(parts[:end]) for end in range(1, len(parts)))
    return [name for name in above if name in known and not f"{own}.".startswith(f"{name}.")]


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's strongly connected components, each sorted, in the order they complete."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _shortest_cycle(graph: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """A shortest cycle inside the component: the easiest one to read and to break."""
    return min((_cycle_through(graph, start, set(component)) for start in component), key=len)


def _cycle_through(graph: dict[str, dict[str, int]], start: str, members: set[str]) -> list[str]:
    """A shortest cycle from `start` back to it, staying among `members`."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        next_frontier = []
        for node in frontier:
            for successor in sorted(graph[node]):
                if successor == start:
                    return [*paths[node], start]
                if successor in members and successor not in paths:
                    paths[successor] = [*paths[node], successor]
                    next_frontier.append(successor)
        frontier = next_frontier
    raise AssertionError(f"no cycle through {start}")


def cycles(root: Path, packages: Sequence[str]) -> list[str]:
    """Each import cycle among the packages' modules, described for a failure message."""
    known = modules(root, packages)
    graph = import_graph(known)
    found = []
    for component in strongly_connected(graph):
        if len(component) == 1 and component[0] not in graph[component[0]]:
            continue
        cycle = _shortest_cycle(graph, component)
        steps = ", ".join(
            f"{importer} imports {imported} (line {graph[importer][imported]})"
            for importer, imported in itertools.pairwise(cycle)
        )
        found.append(f"{len(component)} modules in a cycle: {', '.join(component)}\n    e.g. {steps}")
    return found


def test_no_import_cycle() -> None:
    found = cycles(ROOT, SHIPPED)
    assert not found, "import cycles:\n  " + "\n  ".join(found)


def test_the_checker_finds_a_deliberate_cycle(tmp_path: Path) -> None:
    package = tmp_path / "loop"
    package.mkdir()
    (package / "__init__.py").write_text('"""A package whose two modules import each other."""\n')
    # One import inside a function, the other relative and under TYPE_CHECKING: both still count.
    (package / "first.py").write_text("def later():\n    from loop import second\n\n    return second\n")
    (package / "second.py").write_text(
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from .first import later\n"
    )
    (package / "apart.py").write_text("import loop.first\n")
    found = cycles(tmp_path, ["loop"])
    assert len(found) == 1, found
    assert found[0].startswith("2 modules in a cycle: loop.first, loop.second")
    assert "loop.first imports loop.second (line 2)" in found[0]
    assert "loop.second imports loop.first (line 4)" in found[0]

    (package / "second.py").write_text("import os\n")
    assert cycles(tmp_path, ["loop"]) == []


def test_the_checker_finds_a_cycle_through_a_package_init(tmp_path: Path) -> None:
    # `loop.outside` imports a module of `loop.inner`, which runs `loop/inner/__init__.py` first; that
    # imports `loop.inner.merged`, which imports `loop.outside`: a cycle at run time, though no
    # module names the one that names it.
    inner = tmp_path / "loop" / "inner"
    inner.mkdir(parents=True)
    (tmp_path / "loop" / "__init__.py").write_text("")
    (inner / "__init__.py").write_text("from loop.inner.merged import Merged\n")
    (inner / "merged.py").write_text("from loop.outside import Used\n\nMerged = Used\n")
    (inner / "leaf.py").write_text("Leaf = 1\n")
    (tmp_path / "loop" / "outside.py").write_text("from loop.inner.leaf import Leaf\n\nUsed = Leaf\n")
    found = cycles(tmp_path, ["loop"])
    assert len(found) == 1, found
    assert found[0].startswith("3 modules in a cycle: loop.inner, loop.inner.merged, loop.outside"), found

    # Inside the package, its own `__init__` is already running: siblings importing each other
    # through it is no cycle.
    (tmp_path / "loop" / "outside.py").write_text("Used = 1\n")
    (inner / "merged.py").write_text("from loop.inner.leaf import Leaf\n\nMerged = Leaf\n")
    assert cycles(tmp_path, ["loop"]) == []


def test_no_strawberry_lazy() -> None:
    uses = []
    for module in modules(ROOT, ["graphql_api"]).values():
        text = module.path.read_text()
        for number, line in enumerate(text.splitlines(), 1):
            if "strawberry.lazy" in line or "LazyType" in line:
                uses.append(f"{module.path.relative_to(ROOT)}:{number}: {line.strip()}")
        for statement in imports(module):
            if statement.imported.startswith("strawberry") and {"lazy", "LazyType"} & set(statement.names):
                uses.append(f"{module.path.relative_to(ROOT)}:{statement.line}: imports lazy from strawberry")
    assert not uses, "strawberry.lazy dodges an import cycle; there should be none to dodge:\n" + "\n".join(uses)


def _has_reason(lines: list[str], number: int) -> bool:
    """Whether line `number` (1-based) exists and is a `# long: <reason>` comment."""
    return 1 <= number <= len(lines) and bool(LONG_REASON.match(lines[number - 1]))


def _module_excused(tree: ast.Module, lines: list[str]) -> bool:
    docstring = tree.body[0] if tree.body and isinstance(tree.body[0], ast.Expr) else None
    after_docstring = docstring.end_lineno + 1 if docstring is not None and docstring.end_lineno else 1
    return _has_reason(lines, 1) or _has_reason(lines, after_docstring)


def _function_excused(function: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> bool:
    first = min([function.lineno, *(decorator.lineno for decorator in function.decorator_list)])
    return _has_reason(lines, first - 1) or any(
        _has_reason(lines, number) for number in range(function.lineno + 1, function.body[0].lineno)
    )


def too_long(root: Path, packages: Sequence[str]) -> list[str]:
    """Modules over MODULE_LINES_MAX lines and functions over FUNCTION_LINES_MAX, without a reason."""
    found = []
    for module in modules(root, packages).values():
        text = module.path.read_text()
        lines = text.splitlines()
        tree = ast.parse(text, str(module.path))
        where = module.path.relative_to(root)
        if len(lines) > MODULE_LINES_MAX and not _module_excused(tree, lines):
            found.append(f"{where}: {len(lines)} lines (at most {MODULE_LINES_MAX})")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                if length > FUNCTION_LINES_MAX and not _function_excused(node, lines):
                    found.append(f"{where}:{node.lineno}: {node.name} is {length} lines (at most {FUNCTION_LINES_MAX})")
    return found


def test_no_module_nor_function_too_long_without_a_reason() -> None:
    found = too_long(ROOT, SHIPPED)
    assert not found, "too long, and no `# long: <reason>` line:\n" + "\n".join(found)


def test_the_length_check_honours_only_a_reason_of_the_fixed_form(tmp_path: Path) -> None:
    package = tmp_path / "sized"
    package.mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(FUNCTION_LINES_MAX))
    (package / "__init__.py").write_text(
        f"def bare():\n{body}\n\n"
        f"# long: one table, read top to bottom\ndef above():\n{body}\n\n"
        f"@staticmethod\ndef decorated():\n    # long: the steps of one transaction\n{body}\n\n"
        f"# long:\ndef empty_reason():\n{body}\n\n"
        f"# too long, but\ndef other_form():\n{body}"
    )
    found = too_long(tmp_path, ["sized"])
    assert [line.split(": ")[1].split(" ")[0] for line in found] == ["bare", "empty_reason", "other_form"]

    (package / "big.py").write_text('"""Many lines."""\n' + "x = 1\n" * MODULE_LINES_MAX)
    assert any(line.startswith("sized/big.py: 401 lines") for line in too_long(tmp_path, ["sized"]))
    (package / "big.py").write_text('"""Many lines."""\n# long: generated table\n' + "x = 1\n" * MODULE_LINES_MAX)
    assert not any(line.startswith("sized/big.py") for line in too_long(tmp_path, ["sized"]))


def test_no_shipped_module_imports_tests() -> None:
    found = []
    for module in modules(ROOT, SHIPPED).values():
        for statement in imports(module):
            if statement.imported == "tests" or statement.imported.startswith("tests."):
                found.append(f"{module.path.relative_to(ROOT)}:{statement.line}: imports {statement.imported}")
        for node in ast.walk(ast.parse(module.path.read_text())):
            if (
                isinstance(node, ast.Call)
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and re.match(r"tests(\.|$)", node.args[0].value)
                and ast.unparse(node.func).split(".")[-1] in {"import_module", "__import__"}
            ):
                found.append(f"{module.path.relative_to(ROOT)}:{node.lineno}: imports {node.args[0].value}")
    assert not found, "shipped code never imports tests/:\n" + "\n".join(found)
