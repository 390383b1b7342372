"""Up-front refusal of degenerate settings, naming the argument (e.g. ``max_steps=-5``)."""

from __future__ import annotations

from typing import Any


def require_at_least(arguments: Any, minimum: float, *names: str, optional: bool = False) -> None:
    """Raise ``ValueError`` naming the first field of ``arguments`` below ``minimum`` (None allowed if ``optional``)."""
    for name in names:
        value = getattr(arguments, name)
        if value is None and optional:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum:
            kind = type(arguments).__name__
            allowed = f"a number >= {minimum}" + (" or None" if optional else "")
            raise ValueError(f"{kind}.{name}={value!r}: expected {allowed}")


def require_positive(arguments: Any, *names: str) -> None:
    """Raise ``ValueError`` naming the first field of ``arguments`` that is not a number > 0."""
    for name in names:
        value = getattr(arguments, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{type(arguments).__name__}.{name}={value!r}: expected a number > 0")


def require_period(arguments: Any, *names: str) -> None:
    """Raise ``ValueError`` naming the first field of ``arguments`` that is neither None nor two dates (START END)."""
    for name in names:
        value = getattr(arguments, name)
        if value is not None and len(value) != 2:
            raise ValueError(f"{type(arguments).__name__}.{name}={value!r}: expected START END (two inclusive dates)")
