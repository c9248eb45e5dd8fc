"""The original design note's module, ``session_buddy.mcp.auth``, is a facade for library
users: nothing inside the product imports it (the server's tools use the guard,
``session_buddy.mcp.guard``, with the runtime's manager), and it keeps every name the
note uses."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import session_buddy

FACADE = "session_buddy.mcp.auth"
PRODUCT = Path(session_buddy.__file__).parent
DESIGN_NOTE_NAMES = (
    "AuthConfig",
    "JWTManager",
    "CrossProjectAuth",
    "validate_token",
    "get_auth_error",
    "require_auth",
    "is_authentication_enabled",
    "generate_test_token",
    "get_auth_config",
    "reload_auth_config",
    "get_current_user",
    "revoke_token",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PRODUCT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, by absolute name (``from a import b`` counts as both
    ``a`` and ``a.b``, since ``b`` may be a module)."""
    package = _module_name(path).rpartition(".")[0] if path.name != "__init__.py" else None
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = (package or _module_name(path)).split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and node.value == FACADE:
            names.add(FACADE)  # importlib.import_module("session_buddy.mcp.auth")
    return names


def test_no_product_module_imports_the_facade() -> None:
    importers = sorted(
        str(path.relative_to(PRODUCT.parent))
        for path in PRODUCT.rglob("*.py")
        if _module_name(path) != FACADE and FACADE in _imports_of(path)
    )
    assert importers == []


def test_importing_every_product_module_never_loads_the_facade() -> None:
    """The same at run time, in a fresh interpreter: every module but the facade (and the
    scripts that run when imported: ``__main__``, Alembic's migration environment)."""
    modules = sorted(
        name
        for name in map(_module_name, PRODUCT.rglob("*.py"))
        if name != FACADE and not name.endswith("__main__") and ".migrations." not in name
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print({FACADE!r} in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "False", result.stderr


def test_the_facade_keeps_every_name_of_the_design_note() -> None:
    import session_buddy.mcp.auth as facade

    missing = [name for name in DESIGN_NOTE_NAMES if not hasattr(facade, name)]
    assert missing == []
