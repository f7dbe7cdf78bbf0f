"""Rules an agent definition must satisfy beyond its wire schema (the agent decider checks them).

The msgspec schema already checks shapes and ranges; these checks need the platform's
catalogues or span several fields. Every problem is reported at once, each with the field it
is about, so a user fixes a definition in one round trip.
"""

from parley.contracts.errors import ErrorCode
from parley.contracts.errors import ParleyError
from parley.contracts.registry import AgentSpec
from parley.contracts.run_settings import run_settings_problems

__all__ = ["validate_cron", "validate_spec"]

# (field name, low, high, names); day-of-week allows 7 for Sunday as cron does.
_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun",
                      "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)  # fmt: skip


def validate_spec(spec: AgentSpec) -> None:
    """Check a definition against the catalogues and the cross-field rules.

    Args:
        spec: The definition, already valid against its msgspec schema.

    Raises:
        ParleyError: With ``details={"errors": [{"field", "code", "message"}, ...]}``. Its
            code is the first problem's: ``PROVIDER_NOT_AVAILABLE``, ``TOOL_NOT_AVAILABLE``,
            ``STRATEGY_NOT_AVAILABLE`` or ``VALIDATION_ERROR``.
    """
    errors: list[dict[str, str]] = []

    def fail(code: ErrorCode, field: str, message: str) -> None:
        errors.append({"field": field, "code": code.value, "message": message})

    errors.extend(run_settings_problems(spec))
    trigger = spec.trigger
    has_interval, has_cron = trigger.interval_seconds is not None, trigger.cron is not None
    if trigger.type == "periodic":
        if has_interval == has_cron:
            fail(
                ErrorCode.VALIDATION_ERROR,
                "trigger",
                "a periodic trigger needs exactly one of interval_seconds or cron",
            )
        elif trigger.cron is not None and (problem := validate_cron(trigger.cron)):
            fail(ErrorCode.VALIDATION_ERROR, "trigger.cron", problem)
    else:
        for field, present in (("interval_seconds", has_interval), ("cron", has_cron)):
            if present:
                fail(
                    ErrorCode.VALIDATION_ERROR,
                    f"trigger.{field}",
                    f"{field} applies only to a periodic trigger, not {trigger.type!r}",
                )
    if spec.system_prompt is not None and spec.persona is not None:
        fail(
            ErrorCode.VALIDATION_ERROR,
            "persona",
            "set system_prompt or persona, not both (a persona is a named system prompt)",
        )
    if errors:
        first = errors[0]
        message = f"{first['field']}: {first['message']}"
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
        raise ParleyError(ErrorCode(first["code"]), message, {"errors": errors})


def validate_cron(expression: str) -> str | None:
    """Check a five-field cron expression (``*``, lists, ranges, steps, month/day names).

    Returns:
        None when valid, else what is wrong with it.
    """
    fields = expression.split()
    if len(fields) != 5:
        return (
            f"cron needs 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    for text, (label, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for item in text.split(","):
            if not _cron_item_ok(item.lower(), low, high, names):
                return (
                    f"invalid {label} {text!r}: each part must be *, N, N-M or */S"
                    f" within {low}-{high}"
                )
    return None


def _cron_item_ok(item: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    base, slash, step = item.partition("/")
    if slash and not (step.isdigit() and int(step) >= 1):
        return False
    if base == "*":
        return True
    start, dash, end = base.partition("-")
    first = _cron_value(start, low, high, names)
    if not dash:
        return first is not None
    last = _cron_value(end, low, high, names)
    return first is not None and last is not None and first <= last


def _cron_value(text: str, low: int, high: int, names: tuple[str, ...]) -> int | None:
    if text in names:
        # Month names count from 1, day names from 0 (Sunday), matching the numeric ranges.
        return names.index(text) + low
    if text.isdigit() and low <= int(text) <= high:
        return int(text)
    return None
