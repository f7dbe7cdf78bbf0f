"""Reading what ``-f`` names: agent definitions (TOML or JSON) and cluster manifests (YAML or
JSON), from a file or ``-`` (stdin). A file that cannot be read or parsed is refused here
with exit code 2, before anything is sent."""

import json
import sys
import tomllib
from pathlib import Path
from typing import Annotated
from typing import Any

import typer
import yaml  # type: ignore[import-untyped]

from parley.cli.exits import CliFailure
from parley.cli.exits import Exit

__all__ = ["Definition", "InputFile", "read_definition", "read_manifest", "read_text"]

InputFile = Annotated[
    Path, typer.Option("--file", "-f", help="the file (.toml, .json, .yaml); - for stdin")
]
"""What `-f` takes, wherever it is taken."""


def read_text(path: Path) -> str:
    """The text of ``path`` (``-``: stdin)."""
    if str(path) == "-":
        return sys.stdin.read()
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliFailure("BAD_FILE", f"cannot read {path}: {exc}", Exit.USAGE) from None


class Definition:
    """An agent definition as read: its text, its media type and its parsed fields."""

    def __init__(self, text: str, media_type: str, fields: dict[str, Any]) -> None:
        self.text, self.media_type, self.fields = text, media_type, fields

    @property
    def is_toml(self) -> bool:
        """Whether it was written as TOML (sent as such: the server reads Caxton's layout)."""
        return self.media_type == "application/toml"


def read_definition(path: Path) -> Definition:
    """An agent definition: ``.json`` (or stdin starting with ``{``) is JSON, else TOML."""
    text = read_text(path)
    as_json = path.suffix == ".json" or (str(path) == "-" and text.lstrip().startswith("{"))
    try:
        fields = json.loads(text) if as_json else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if as_json else "TOML"
        raise CliFailure("BAD_FILE", f"{path} is not valid {kind}: {exc}", Exit.USAGE) from None
    if not isinstance(fields, dict):
        raise CliFailure("BAD_FILE", f"{path}: an agent definition is an object", Exit.USAGE)
    return Definition(text, "application/json" if as_json else "application/toml", fields)


def read_manifest(path: Path) -> tuple[str, dict[str, Any]]:
    """A cluster manifest's text and fields; it must name itself (``metadata.name``)."""
    text = read_text(path)
    try:
        manifest = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CliFailure("BAD_MANIFEST", f"{path} is not valid YAML: {exc}", Exit.USAGE) from None
    metadata = manifest.get("metadata") if isinstance(manifest, dict) else None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        raise CliFailure(
            "BAD_MANIFEST", f"{path}: a manifest needs metadata.name (see docs/api.md)", Exit.USAGE
        )
    return text, manifest
