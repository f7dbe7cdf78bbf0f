"""A reader of the NATS server config format, enough for deploy/'s files: blocks `{}`,
arrays `[]`, `key: value` / `key = value` / `key value`, quoted and bare strings (a bare
`nats-route://host:port` is one string), `#` and `//` comments. Keys stay as written
(account names are case-sensitive); values stay strings (`$VAR` references unresolved).
nats-server itself checks the files (`nats-server -t`, test_nats_config.py)."""

from typing import Any

_STOP = set(" \t\r\n,;]}#")


class NatsConfError(ValueError):
    """The text is not a config this reader understands."""


def parse(text: str) -> dict[str, Any]:
    """The config as nested dicts and lists."""
    return _Reader(text).block(end=None)


class _Reader:
    def __init__(self, text: str) -> None:
        self.text, self.at = text, 0

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def skip(self) -> None:
        """Whitespace, separators and comments between items."""
        while self.at < len(self.text):
            if self.text.startswith(("#", "//"), self.at):
                end = self.text.find("\n", self.at)
                self.at = len(self.text) if end < 0 else end
            elif self.peek() in " \t\r\n,;":
                self.at += 1
            else:
                return

    def block(self, end: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while True:
            self.skip()
            if not self.peek():
                if end is None:
                    return out
                raise NatsConfError(f"unclosed block at end of text (wanted {end!r})")
            if self.peek() == end:
                self.at += 1
                return out
            key = self.key()
            while self.peek() in (" ", "\t"):
                self.at += 1
            if self.peek() in (":", "="):
                self.at += 1
            while self.peek() in (" ", "\t"):
                self.at += 1
            out[key] = self.value()

    def key(self) -> str:
        start = self.at
        while self.peek() and self.peek() not in " \t\r\n:={":
            self.at += 1
        if self.at == start:
            near = self.text[start : start + 20]
            raise NatsConfError(f"a key expected at offset {start}: {near!r}")
        return self.text[start : self.at]

    def value(self) -> Any:
        char = self.peek()
        if char == "{":
            self.at += 1
            return self.block(end="}")
        if char == "[":
            self.at += 1
            items: list[Any] = []
            while True:
                self.skip()
                if self.peek() == "]":
                    self.at += 1
                    return items
                if not self.peek():
                    raise NatsConfError("unclosed array at end of text")
                items.append(self.value())
        if char in ("'", '"'):
            end = self.text.find(char, self.at + 1)
            if end < 0:
                raise NatsConfError(f"unclosed string at offset {self.at}")
            value, self.at = self.text[self.at + 1 : end], end + 1
            return value
        start = self.at
        while self.peek() and self.peek() not in _STOP:
            self.at += 1
        if self.at == start:
            raise NatsConfError(f"a value expected at offset {start}")
        return self.text[start : self.at]


def values_of(config: Any, key: str) -> list[Any]:
    """Every value of ``key`` anywhere in ``config`` (e.g. each user's ``password``, whether
    under ``authorization`` or under ``accounts``)."""
    if isinstance(config, dict):
        found = [config[key]] if key in config else []
        return found + [v for value in config.values() for v in values_of(value, key)]
    if isinstance(config, list):
        return [v for item in config for v in values_of(item, key)]
    return []
