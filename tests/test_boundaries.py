"""The design rule, read from the imports (with ``ast``, so a lazy import inside a function counts).

- Everything is imported under the one namespace, ``proxyproof``: never a bare ``mocks``,
  ``harness``, ``fixtures`` or ``proxy_impl``.
- The checker is independent of what it checks: ``harness`` and ``mocks`` import nothing of
  ``proxy_impl``, and ``proxy_impl`` nothing of ``harness`` or ``mocks``.
- Only the wiring modules (the CLI, the gateway hand-over, the pytest plugin) import both the
  proxy and the apparatus.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Repository folder → the package it installs as.
PARTS = {
    "proxyproof": "proxyproof",
    "proxy_impl": "proxyproof.proxy_impl",
    "mocks": "proxyproof.mocks",
    "harness": "proxyproof.harness",
    "fixtures": "proxyproof.fixtures",
}
BARE = ("proxy_impl", "mocks", "harness", "fixtures")
WIRING = {"proxyproof.cli", "proxyproof.check", "proxyproof.gateways", "proxyproof.pytest_plugin"}


def _module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[0] in PARTS:
        parts[0:1] = PARTS[parts[0]].split(".")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved to absolute names."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def _sources(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _offending(folders: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _sources(*folders)
        for name in sorted(_imports(path))
        if any(_within(name, package) for package in forbidden)
    ]


def test_every_import_is_namespaced():
    bare = _offending((*PARTS, "tests"), BARE)
    assert bare == []


def test_the_proxy_imports_no_apparatus():
    assert _offending(("proxy_impl",), ("proxyproof.harness", "proxyproof.mocks")) == []


@pytest.mark.parametrize("folder", ["harness", "mocks"])
def test_the_apparatus_imports_nothing_of_the_proxy(folder):
    assert _offending((folder,), ("proxyproof.proxy_impl", "proxyproof.cli",
                                  "proxyproof.gateways")) == []


def test_the_mocks_need_no_harness():
    assert _offending(("mocks",), ("proxyproof.harness",)) == []


def test_only_the_wiring_joins_proxy_and_apparatus():
    joining = {
        _module_name(path)
        for path in _sources(*PARTS)
        if any(_within(n, "proxyproof.proxy_impl") for n in _imports(path))
        and any(_within(n, p) for n in _imports(path)
                for p in ("proxyproof.harness", "proxyproof.mocks"))
    }
    assert joining <= WIRING, joining - WIRING


def test_the_rule_catches_a_bare_and_a_relative_import(tmp_path, monkeypatch):
    """The reader resolves what it must: a bare import and a relative one that climbs out."""
    fake = ROOT / "harness" / "_boundary_probe.py"
    monkeypatch.setattr(Path, "rglob", lambda self, pattern: iter([fake]))
    source = "import mocks\nfrom ..proxy_impl import codecs\n"
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: source)
    assert _offending(("harness",), BARE) == ["harness/_boundary_probe.py imports mocks"]
    assert "proxyproof.proxy_impl.codecs" in _imports(fake)
