"""The layers stay as the tree shows them: protocols -> access (auth) -> repositories -> drivers, the core below all.

The agent process (``app.agent``) stands beside the server, not on it: it uses the core only, and no part of the
server imports it.

Read from the source with ``ast``, so a new import that crosses a layer fails here before anyone builds on it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"
PROTOCOLS = ("app.http_backend", "app.tfc_api", "app.internal", "app.oauth", "app.agent_api")

# What each layer may import from the app (anything outside ``app`` is free).
ALLOWED = {
    "app.core": ("app.core",),
    "app.agent": ("app.core", "app.agent"),
    "app.drivers": ("app.core", "app.drivers"),
    "app.repositories": ("app.core", "app.drivers", "app.extensions", "app.models", "app.repositories"),
}
# What no module of a layer may import.
FORBIDDEN = {
    "app.auth": (*PROTOCOLS, "app.cli", "app.drivers", "app.agent"),
    "app.web": (*PROTOCOLS, "app.cli", "app.agent"),
    **{
        protocol: (*(p for p in PROTOCOLS if p != protocol), "app.drivers", "app.cli", "app.agent")
        for protocol in PROTOCOLS
    },
}


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every ``app.*`` module ``path`` imports, at any depth of the file (deferred imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "app" or name.startswith("app.")}


def registers_routes(path: Path) -> bool:
    """True for a view module: one that decorates functions with ``*.route(...)`` / ``route(...)``."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                call = decorator.func if isinstance(decorator, ast.Call) else decorator
                name = call.attr if isinstance(call, ast.Attribute) else getattr(call, "id", "")
                if name == "route":
                    return True
    return False


MODULES = {module_name(path): path for path in sorted(APP.rglob("*.py"))}
VIEW_MODULES = {name for name, path in MODULES.items() if registers_routes(path)}


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def real_modules(imported: set[str]) -> set[str]:
    """The imported names that are modules of the app (``from a import b`` may name a function ``b``)."""
    return {name for name in imported if name in MODULES}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_imports_only_what_its_layer_may(name: str) -> None:
    imported = real_modules(imports_of(MODULES[name]))
    for layer, allowed in ALLOWED.items():
        if within(name, layer):
            crossing = sorted(i for i in imported if not any(within(i, a) for a in allowed))
            assert not crossing, f"{name} (layer {layer}) imports {crossing}"
    for layer, forbidden in FORBIDDEN.items():
        if within(name, layer):
            crossing = sorted(i for i in imported if any(within(i, f) for f in forbidden))
            assert not crossing, f"{name} (layer {layer}) imports {crossing}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_views_never_import_views(name: str) -> None:
    if name.rsplit(".", 1)[-1] == "__init__" or MODULES[name].name == "__init__.py":
        return  # a blueprint package imports its view modules so that their routes register
    imported = real_modules(imports_of(MODULES[name])) & VIEW_MODULES
    assert not imported - {name}, f"{name} imports the view modules {sorted(imported)}"


def test_the_app_root_holds_only_the_factory_extensions_and_models() -> None:
    loose = sorted(path.name for path in APP.glob("*.py"))
    assert loose == ["__init__.py", "extensions.py", "models.py"]
