"""`read_file`: the text of a session file, capped."""

import codecs

from parley.contracts.tools import ReadFileArgs
from parley.contracts.tools import ReadFileConfig
from parley.runtime.tools.base import ToolContext
from parley.runtime.tools.base import ToolError
from parley.runtime.tools.base import ToolOutcome
from parley.runtime.tools.base import builtin

__all__ = ["read_file", "is_text_type"]

_TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/csv",
        "application/javascript",
        "application/x-ndjson",
    }
)


def is_text_type(content_type: str) -> bool:
    """Whether a content type holds text (``text/*``, JSON, XML, YAML, TOML, CSV, ``+json``)."""
    base = content_type.split(";", 1)[0].strip().lower()
    return (
        base.startswith("text/") or base in _TEXT_TYPES or base.endswith(("+json", "+xml", "+yaml"))
    )


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset" and value:
            try:
                return codecs.lookup(value.strip('"')).name
            except LookupError:
                break
    return "utf-8"


@builtin("read_file", ReadFileArgs, ReadFileConfig)
async def read_file(
    arguments: ReadFileArgs, config: ReadFileConfig, ctx: ToolContext
) -> ToolOutcome:
    """Read ``arguments.name``; a file over ``config.max_bytes`` is truncated and says so.

    The content goes to the model; the event records metadata.
    """
    if ctx.files is None:
        raise ToolError("not_found", "this call has no session, so there are no files")
    name, content_type, raw = await ctx.files.read(arguments.name)
    if not is_text_type(content_type):
        raise ToolError(
            "refused", f"{name!r} is {content_type}, not text; only text files can be read"
        )
    truncated = len(raw) > config.max_bytes
    # An incremental decoder holds back a character cut in half by the cap, not an error.
    decoder = codecs.getincrementaldecoder(_charset(content_type))("strict")
    try:
        text = decoder.decode(raw[: config.max_bytes], final=not truncated)
    except UnicodeDecodeError as exc:
        raise ToolError("refused", f"{name!r} is not valid text ({exc.reason})") from None
    data = {
        "name": name,
        "content_type": content_type,
        "size_bytes": len(raw),
        "truncated": truncated,
    }
    if truncated:
        text += f"\n[truncated: first {config.max_bytes} of {len(raw)} bytes]"
    return ToolOutcome(content=text, data=data)
