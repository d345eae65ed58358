"""Check that imports between flchain's top-level packages run one way, and that no modules import in a circle.

The layers, top to bottom (a package may import only packages below it):
    cli -> experiments -> localnet -> participant | node | gateway -> client -> abci_app
Every import counts, including the lazy ones inside functions. Prints the arrows between packages
and every violation; exits 1 if there is one. Run: python scripts/check_layers.py [--root DIR]
"""

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

LAYERS: dict[str, int] = {
    "abci_app": 0,
    "client": 1,
    "participant": 2,
    "node": 2,
    "gateway": 2,
    "localnet": 3,  # N nodes on one host, built from node's commands
    "experiments": 4,
    "cli": 5,
    "examples": 6,  # users' own clients: loaded by name (flchain federate --client), imported by nothing
}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_imports(root: Path) -> dict[str, set[str]]:
    """{module: project modules it imports}, for every module of the layered packages."""
    modules = {module_name(root, path): path for package in LAYERS for path in sorted((root / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from pkg import mod` may name a submodule: prefer it when it is one
                names = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names
                ]
            else:
                continue
            targets.update(n for n in names if n.split(".")[0] in LAYERS)
        graph[name] = {t for t in targets if t != name}
    return graph


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports that run up or sideways between packages."""
    found = []
    for module, targets in sorted(graph.items()):
        package = module.split(".")[0]
        for target in sorted(targets):
            other = target.split(".")[0]
            if other != package and LAYERS[other] >= LAYERS[package]:
                way = "up" if LAYERS[other] > LAYERS[package] else "sideways"
                found.append(f"{module} imports {target}: {package} -> {other} runs {way}")
    return found


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Module import cycles (each reported once, from its smallest module)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if target not in graph:
                continue  # a name imported from a package's __init__ that is not a module of its own
            if state.get(target) == 1:
                cycle = path[path.index(target) :]
                start = cycle.index(min(cycle))
                cycle = cycle[start:] + cycle[:start]
                if cycle not in found:
                    found.append(cycle)
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return found


def package_arrows(graph: dict[str, set[str]]) -> dict[tuple[str, str], int]:
    arrows: dict[tuple[str, str], int] = defaultdict(int)
    for module, targets in graph.items():
        for target in targets:
            a, b = module.split(".")[0], target.split(".")[0]
            if a != b:
                arrows[(a, b)] += 1
    return dict(arrows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    graph = project_imports(args.root)
    for (a, b), count in sorted(package_arrows(graph).items(), key=lambda kv: (-LAYERS[kv[0][0]], kv[0])):
        print(f"{a:>11} -> {b:<11} ({count} imports)")
    problems = violations(graph) + [" -> ".join([*cycle, cycle[0]]) + ": a circle" for cycle in circles(graph)]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    print(f"{len(graph)} modules, {len(problems)} violations")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
