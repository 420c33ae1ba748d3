"""The layout the code keeps: imports flow one way, data -> models -> training -> run folders ->
attacks and checks -> report -> study -> command line, and private APIs are reached from one place only."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = ("nodekd_cli.app", "nodekd_cli.__main__", "nodekd_cli.output", "nodekd_cli.options", "nodekd_cli.commands")


def _modules():
    found = {}
    for package in ("nodekd_cli", "models"):
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def _imports(path, modules=()):
    """Every module an `import` names in `path`, at any depth (imports inside functions count too). `from package
    import module` names the module (a package's own modules reach each other so, not through its __init__)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names}
            names |= submodules if submodules <= set(modules) else {node.module} | submodules
    return names


def _graph():
    modules = _modules()
    return {name: {m for m in _imports(path, modules) if m in modules and m != name} for name, path in modules.items()}


def _is_cli(name):
    return any(name == c or name.startswith(c + ".") for c in CLI)


def test_no_import_cycle():
    graph = _graph()
    state = {}

    def visit(name, trail):
        state[name] = "open"
        for other in sorted(graph[name]):
            assert state.get(other) != "open", " -> ".join([*trail, name, other])
            if other not in state:
                visit(other, [*trail, name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_library_code_never_imports_the_command_line():
    for name, imported in _graph().items():
        if not _is_cli(name):
            assert not [m for m in imported if _is_cli(m)], name


def test_private_apis_are_reached_from_one_place():
    for folder in ("nodekd_cli", "models", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            imported = _imports(path)
            if path != ROOT / "nodekd_cli" / "backend.py":  # the one device helper
                assert not [m for m in imported if m.startswith("keras.src")], path
            assert not [m for m in imported if m.startswith("torchdiffeq._impl")], path
