"""`calculator`: arithmetic without ``eval``.

A hand-written evaluator over Python's ``ast``: it accepts only number literals, the operators
``+ - * / // % **``, unary ``+``/``-``, parentheses and a whitelist of math functions and
constants; anything else (names, attributes, calls of other functions, strings, comparisons)
is refused. Integer results are bounded in size and ``**`` is checked *before* it runs, so
``9**9**9`` is a quick error rather than a hung process.
"""

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from parley.contracts.tools import CalculatorArgs
from parley.contracts.tools import CalculatorConfig
from parley.runtime.tools.base import ToolContext
from parley.runtime.tools.base import ToolError
from parley.runtime.tools.base import ToolOutcome
from parley.runtime.tools.base import builtin

__all__ = ["MAX_INT_BITS", "calculator", "evaluate"]

MAX_INT_BITS = 10_000
"""Largest integer result (about 3,000 decimal digits)."""

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def _factorial(n: Number) -> int:
    if not isinstance(n, int) or not 0 <= n <= 1000:
        raise ValueError("factorial takes an integer from 0 to 1000")
    return math.factorial(n)


_FUNCTIONS: dict[str, Callable[..., Number]] = {
    **{
        name: getattr(math, name)
        for name in (
            "sqrt", "exp", "log", "log10", "log2", "sin", "cos", "tan", "asin", "acos", "atan",
            "atan2", "sinh", "cosh", "tanh", "floor", "ceil", "hypot", "degrees", "radians",
        )
    },
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "factorial": _factorial,
}  # fmt: skip
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _power(base: Number, exponent: Number) -> Number:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        if exponent * math.log2(abs(base)) > MAX_INT_BITS:
            raise ToolError(
                "invalid_arguments",
                f"{base} ** {exponent} is too large (results are limited to {MAX_INT_BITS} bits)",
            )
    return base**exponent


def _eval(node: ast.AST) -> Number:
    value = _eval_node(node)
    # Checked at every step, so a chain of multiplications cannot grow a huge integer either.
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolError("invalid_arguments", f"a value exceeds {MAX_INT_BITS} bits")
    return value


def _eval_node(node: ast.AST) -> Number:
    match node:
        case ast.Expression(body=body):
            return _eval(body)
        case ast.Constant(value=int() | float() as value) if not isinstance(value, bool):
            return value
        case ast.BinOp(left=left, op=ast.Pow(), right=right):
            return _power(_eval(left), _eval(right))
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _BINARY:
            return _BINARY[type(op)](_eval(left), _eval(right))  # type: ignore[no-any-return]
        case ast.UnaryOp(op=op, operand=operand) if type(op) in _UNARY:
            return _UNARY[type(op)](_eval(operand))  # type: ignore[no-any-return]
        case ast.Name(id=name) if name in _CONSTANTS:
            return _CONSTANTS[name]
        case ast.Call(func=ast.Name(id=name), args=args, keywords=[]) if name in _FUNCTIONS:
            values = [_eval(a) for a in args]
            try:
                return _FUNCTIONS[name](*values)
            except (ValueError, TypeError) as exc:
                raise ToolError("invalid_arguments", f"{name}: {exc}") from None
        case ast.Name(id=name) | ast.Call(func=ast.Name(id=name)):
            allowed = ", ".join([*_FUNCTIONS, *_CONSTANTS])
            raise ToolError("invalid_arguments", f"unknown name {name!r}; use one of {allowed}")
    raise ToolError(
        "invalid_arguments",
        f"unsupported syntax {type(node).__name__}: use numbers, + - * / // % **, parentheses"
        " and math functions",
    )


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression.

    Raises:
        ToolError: ``invalid_arguments`` for bad syntax, unknown names, division by zero,
            math domain errors, and results too large or not real.
    """
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ToolError("invalid_arguments", f"not an arithmetic expression: {exc}") from None
    try:
        result = _eval(tree)
    except ZeroDivisionError:
        raise ToolError("invalid_arguments", "division by zero") from None
    except OverflowError:
        raise ToolError("invalid_arguments", "the result is too large for a number") from None
    except RecursionError:
        raise ToolError("invalid_arguments", "the expression is nested too deeply") from None
    except (ValueError, TypeError) as exc:
        raise ToolError("invalid_arguments", str(exc) or type(exc).__name__) from None
    if isinstance(result, complex):
        raise ToolError("invalid_arguments", "the result is not a real number")
    if isinstance(result, float) and not math.isfinite(result):
        raise ToolError("invalid_arguments", "the result is not a finite number")
    return result


@builtin("calculator", CalculatorArgs, CalculatorConfig)
async def calculator(
    arguments: CalculatorArgs, config: CalculatorConfig, ctx: ToolContext
) -> ToolOutcome:
    """Evaluate ``arguments.expression``."""
    result = evaluate(arguments.expression)
    return ToolOutcome(
        content=str(result), data={"expression": arguments.expression, "result": result}
    )
