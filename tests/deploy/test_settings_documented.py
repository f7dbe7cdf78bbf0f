"""Every `PARLEY_*` setting the code reads is documented in docs/operations.md.

The names are found in the code, not listed here, so a new setting without documentation
fails this test:

- settings Structs: every `load_settings(environ)` function and every `from_env(<Struct>)`
  call in contracts/, libs/ and services/ is run against an environment that records the
  variables looked up (inherited fields, renamed ones like `PARLEY_EDGE_HOST`, per-provider
  ones like `PARLEY_ANTHROPIC_BASE_URL` included);
- direct reads: `os.environ.get("PARLEY_…")`, `os.getenv(…)`, `os.environ[…]`,
  `environ.get(…)`, f-strings included (`f"PARLEY_{provider}_API_KEY_FILE"`).

These must each have a row in the settings tables of the "Settings" section. Every other
`PARLEY_` name the source mentions (in a message, a docstring, a stream name) must appear
somewhere in docs/operations.md. A documented `PARLEY_<PROVIDER>_BASE_URL` stands for every
name with something in place of `<PROVIDER>`.
"""

import ast
import functools
import importlib
import re
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest

from parley.kit.settings import from_env

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = [
    ROOT / "contracts" / "src",
    *sorted(ROOT.glob("libs/*/src")),
    *sorted(ROOT.glob("services/*/src")),
]
OPERATIONS = ROOT / "docs" / "operations.md"
NAME = re.compile(r"PARLEY_(?:[A-Z0-9_]|<[A-Z_]+>)*")
PLACEHOLDER = "\x00"


class Recorder(Mapping[str, str]):
    """An empty environment that remembers every variable looked up in it."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@functools.cache
def _modules() -> list[tuple[str, ast.Module, str]]:
    """``(dotted module name, syntax tree, text)`` of every source file."""
    found = []
    for root in SOURCE_ROOTS:
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            text = path.read_text()
            found.append((name, ast.parse(text), text))
    return found


def _pattern(node: ast.expr) -> str | None:
    """The string a constant or f-string argument makes, placeholders for its `{…}`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) else PLACEHOLDER for part in node.values
        )
    return None


def _is_environ(node: ast.expr) -> bool:
    text = ast.unparse(node)
    return text in ("os.environ", "environ", "env") or text.endswith(".environ")


def _direct_reads(tree: ast.Module) -> set[str]:
    """Variables read straight from the environment."""
    found = set()
    for node in ast.walk(tree):
        argument = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "get" and _is_environ(func.value):
                argument = node.args[0]
            elif ast.unparse(func) in ("os.getenv", "getenv"):
                argument = node.args[0]
        elif isinstance(node, ast.Subscript) and _is_environ(node.value):
            argument = node.slice
        pattern = _pattern(argument) if argument is not None else None
        if pattern is not None and pattern.startswith("PARLEY_"):
            found.add(pattern)
    return found


def _imported(module: str, tree: ast.Module, name: str) -> Any:
    """The object ``name`` stands for in ``module`` (imported into it or defined there)."""
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return getattr(importlib.import_module(node.module), alias.name)
    return getattr(importlib.import_module(module), name)


def _struct_reads(module: str, tree: ast.Module) -> set[str]:
    """Variables the module's settings loaders look up."""
    recorder = Recorder()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "load_settings":
            importlib.import_module(module).load_settings(recorder)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("from_env")):
            continue
        if not node.args or not isinstance(node.args[0], ast.Name):
            continue
        prefixes = [_pattern(k.value) for k in node.keywords if k.arg == "prefix"]
        prefixes += [_pattern(arg) for arg in node.args[2:3]]
        if any(prefix is None or PLACEHOLDER in prefix for prefix in prefixes):
            continue  # a computed prefix: the module's load_settings covers it
        settings = _imported(module, tree, node.args[0].id)
        assert issubclass(settings, msgspec.Struct)
        from_env(settings, recorder, *[p for p in prefixes if p is not None])
    return recorder.asked


@functools.cache
def _read_by_code() -> frozenset[str]:
    found: set[str] = set()
    for module, tree, _ in _modules():
        found |= _direct_reads(tree) | _struct_reads(module, tree)
    return frozenset(found)


def _mentioned_in_code() -> set[str]:
    """Every `PARLEY_…` name in the source text; a `<PROVIDER>` in it stands for any part."""
    return {
        re.sub(r"<[A-Z_]+>", PLACEHOLDER, match)
        for *_, text in _modules()
        for match in NAME.findall(text)
    }


def _settings_section() -> str:
    text = OPERATIONS.read_text()
    start = text.index("\n## Settings\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def _documented_settings() -> set[str]:
    rows = re.findall(r"^\| `([^`]+)` \|", _settings_section(), flags=re.M)
    return {row for row in rows if row.startswith("PARLEY_")}


def _covers(documented: str, name: str) -> bool:
    """Whether the documented name (maybe with `<PLACEHOLDER>`s) stands for ``name``
    (maybe with :data:`PLACEHOLDER`s from an f-string)."""
    if name.replace(PLACEHOLDER, "<>") == re.sub(r"<[A-Z_]+>", "<>", documented):
        return True
    pattern = "".join(
        "[A-Z0-9_]+" if part.startswith("<") else re.escape(part)
        for part in re.split(r"(<[A-Z_]+>)", documented)
    )
    concrete = name.replace(PLACEHOLDER, "X")
    return re.fullmatch(pattern, concrete) is not None


@pytest.fixture(scope="module")
def documented() -> set[str]:
    return _documented_settings()


def test_the_scan_finds_settings_of_every_kind() -> None:
    found = _read_by_code()
    assert {"PARLEY_NATS_URL", "PARLEY_EDGE_HOST", "PARLEY_JWT_ISSUER"} <= found
    assert {"PARLEY_TASKS_ACK_WAIT", "PARLEY_SEND_WORKERS", "PARLEY_LEASE_TTL"} <= found
    assert "PARLEY_ANTHROPIC_BASE_URL" in found
    assert f"PARLEY_{PLACEHOLDER}_API_KEY_FILE" in found


def test_every_setting_the_code_reads_has_a_row_in_the_settings_tables(
    documented: set[str],
) -> None:
    missing = sorted(
        name.replace(PLACEHOLDER, "{…}")
        for name in _read_by_code()
        if not any(_covers(row, name) for row in documented)
    )
    assert missing == [], f"add these to the Settings section of docs/operations.md: {missing}"


def test_every_parley_name_in_the_code_is_explained(documented: set[str]) -> None:
    text = OPERATIONS.read_text()
    in_docs = set(NAME.findall(text))
    missing = sorted(
        name
        for name in _mentioned_in_code()
        if not any(
            _covers(doc, name) or (name.endswith("_") and doc.startswith(name)) for doc in in_docs
        )
    )
    assert missing == [], f"mention these in docs/operations.md: {missing}"


def test_documented_settings_are_ones_the_code_reads_or_the_deployment_sets(
    documented: set[str],
) -> None:
    """A row for a setting nothing reads is a stale row; the NATS server's own variables and
    the settings other changes are adding are named in the deployment files instead."""
    read = _read_by_code()
    deployment = "\n".join(
        path.read_text()
        for path in [ROOT / "docker-compose.yml", *sorted((ROOT / "deploy").rglob("*"))]
        if path.is_file() and path.suffix in ("", ".yml", ".yaml", ".conf")
    )
    stale = sorted(
        row
        for row in documented
        if not any(_covers(row, name) for name in read) and row not in deployment
    )
    assert stale == [], f"rows for settings nothing reads: {stale}"
