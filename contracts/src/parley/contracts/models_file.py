"""The operator's models catalogue file: models (and prices) the shipped catalogue lacks.

``PARLEY_MODELS_FILE`` names a JSON (``.json``), YAML (``.yaml``/``.yml``) or TOML
(``.toml``) file shaped like the shipped ``data/models.toml``: ``{"models": [<ModelInfo>,
...]}``. Its entries extend ours: an entry for a provider and model we list replaces ours
(e.g. a negotiated price), any other is added. Every service that reads the catalogue reads
the file once, at start-up; a file that is missing, unreadable, of another shape, or naming a
provider Parley has no adapter for stops the service with a :class:`CatalogueError` naming
the file and the problem.
"""

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml  # type: ignore[import-untyped]

from parley.contracts.models import ModelCatalogue
from parley.contracts.models import ModelInfo

__all__ = ["MODELS_FILE_ENV", "CatalogueError", "extended", "read_models_file"]

MODELS_FILE_ENV = "PARLEY_MODELS_FILE"
"""The environment variable naming the operator's catalogue file."""


class CatalogueError(ValueError):
    """The operator's catalogue file cannot be used (the message says why)."""


def read_models_file(path: Path) -> ModelCatalogue:
    """The catalogue in ``path`` (by its suffix: ``.json``, ``.yaml``/``.yml``, ``.toml``).

    Raises:
        CatalogueError: When it cannot be read or is not a catalogue.
    """
    where = f"{MODELS_FILE_ENV}={path}"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CatalogueError(f"{where}: cannot read it ({exc.strerror})") from None
    try:
        data = _parse(path.suffix.lower(), raw)
        return msgspec.convert(data, ModelCatalogue)
    except CatalogueError as exc:
        raise CatalogueError(f"{where}: {exc}") from None
    except (msgspec.ValidationError, ValueError, yaml.YAMLError) as exc:
        raise CatalogueError(f"{where}: not a models catalogue: {exc}") from None


def extended(shipped: ModelCatalogue, environ: Mapping[str, str] | None = None) -> ModelCatalogue:
    """``shipped`` extended by the file ``PARLEY_MODELS_FILE`` names (itself when unset).

    Raises:
        CatalogueError: When the file cannot be used.
    """
    env = os.environ if environ is None else environ
    name = env.get("PARLEY_MODELS_FILE", "").strip()  # spelled out: docs' settings test reads it
    if not name:
        return shipped
    extra = read_models_file(Path(name))
    providers = set(shipped.providers())
    if unknown := sorted({info.provider for info in extra.models} - providers):
        raise CatalogueError(
            f"{MODELS_FILE_ENV}={name}: no adapter for provider {', '.join(unknown)};"
            f" use one of {', '.join(shipped.providers())}"
        )
    replaced: dict[tuple[str, str], ModelInfo] = {(i.provider, i.model): i for i in extra.models}
    if len(replaced) < len(extra.models):
        raise CatalogueError(f"{MODELS_FILE_ENV}={name}: a provider and model listed twice")
    ours = [replaced.pop((i.provider, i.model), i) for i in shipped.models]
    return ModelCatalogue(models=[*ours, *replaced.values()])


def _parse(suffix: str, raw: bytes) -> Any:
    if suffix == ".json":
        return msgspec.json.decode(raw)
    if suffix in (".yaml", ".yml"):
        return yaml.safe_load(raw)
    if suffix == ".toml":
        return tomllib.loads(raw.decode())
    raise CatalogueError(f"unknown format {suffix or '(none)'}: use .json, .yaml, .yml or .toml")
