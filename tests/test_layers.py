"""The house plan, checked: imports point down the layers and no modules import each other in a
circle. Every import counts, function-local and TYPE_CHECKING ones included.

Layers, bottom first (docs/architecture.md draws them). A module may import modules of its own
package and of the packages in lower layers; packages that share a layer do not import each
other. Only the composition root (settings, urls, routing, asgi, cli) may import anything, and
nothing imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LAYERS: list[tuple[str, ...]] = [
    ("command",),  # the project's base: org, policy, timeline, clock, realtime, text
    ("streams",),  # the broker, payload formats, devices, time series
    ("alerts",),  # rules, alerts, deliveries to departments' systems
    ("incidents",),  # incidents, whistles, summonses, deadlines, replay, CAP
    ("intake", "supervision"),  # reports from grid officers and the public; figures
    ("demo",),  # the demo township, seeded from everything below
    ("api", "frontend"),  # HTTP API and Open311; pages and websockets
]
PACKAGES: tuple[str, ...] = tuple(package for layer in LAYERS for package in layer)
COMPOSITION_ROOT = {
    "command.settings",
    "command.urls",
    "command.routing",
    "command.asgi",
    "command.cli",
}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project's modules that ``name`` imports anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [[alias.name] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # ``from a import b`` imports the module a.b if there is one, else a name of a.
            candidates = [[f"{module}.{alias.name}", module] for alias in node.names]
        else:
            continue
        for options in candidates:
            for option in options:
                while option and option not in known:
                    option = option.rpartition(".")[0]
                if option:
                    if option != name:
                        targets.add(option)
                    break
    return targets


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def package_of(module: str) -> str:
    return module.split(".")[0]


def layer_of(module: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package_of(module) in layer)


def test_every_package_has_a_layer():
    on_disk = {
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if path.parent.name not in ("tests", "bench")
    }
    assert on_disk == set(PACKAGES), "add the new package to LAYERS (and docs/architecture.md)"


def test_imports_point_down():
    upward = []
    for module, targets in graph().items():
        if module in COMPOSITION_ROOT:
            continue
        for target in targets:
            if target in COMPOSITION_ROOT:
                upward.append(f"{module} → {target} (the composition root)")
            elif package_of(target) == package_of(module):
                continue
            elif layer_of(target) >= layer_of(module):
                upward.append(f"{module} → {target}")
    assert not upward, "imports that do not point down:\n" + "\n".join(sorted(upward))


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the cycles of the graph (components of two or more)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles = []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_no_module_cycles():
    cycles = strongly_connected(graph())
    assert not cycles, "modules that import each other in a circle:\n" + "\n".join(
        " ↔ ".join(cycle) for cycle in cycles
    )


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(edges, expected):
    assert strongly_connected(edges) == expected


def test_the_import_parser_sees_local_and_relative_imports(tmp_path):
    known = {"pkg": tmp_path, "pkg.a": tmp_path, "pkg.b": tmp_path, "other.c": tmp_path}
    source = tmp_path / "a.py"
    source.write_text(
        "from . import b\ndef f():\n    from other.c import thing\n    import other.c.deep\n"
    )
    assert imports("pkg.a", source, known) == {"pkg.b", "other.c"}
