"""``{% load fsml_ui %}``: the page filters every server-rendered page shares (numbers, percentages, times).

``num`` writes thousands separators and at most three decimals, ``pct`` a fraction as a percentage, and
``when`` a ``<time datetime="ISO">`` element whose text is already readable (``2026-12-07 14:03 UTC``); the
layout's script (``annotation/fsml.js``) rewrites that text into the user's locale.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()

_EMPTY = "—"


def _number(value: Any) -> Decimal | None:
    """``value`` as a Decimal, or None when it is not a number (None, "", text, NaN)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return number if number.is_finite() else None


@register.filter
def num(value: Any, decimals: int = 3) -> str:
    """``1234567.891234`` as ``1,234,567.891``: thousands separators, up to ``decimals`` decimals, trailing
    zeros dropped; a dash for a missing value, the value itself when it is not a number."""
    number = _number(value)
    if number is None:
        return _EMPTY if value is None or value == "" else str(value)
    places = max(int(decimals), 0)
    text = f"{number:,.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@register.filter
def pct(value: Any, decimals: int = 1) -> str:
    """A fraction (``0.8734``) as a percentage (``87.3%``); a dash for a missing value."""
    number = _number(value)
    if number is None:
        return _EMPTY
    return f"{num(number * 100, decimals)}%"


def _as_datetime(value: Any) -> dt.datetime | None:
    """A datetime (aware, in UTC), from a datetime, a date or an ISO string; None otherwise."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, dt.datetime):
        if timezone.is_naive(value):
            value = timezone.make_aware(value, dt.UTC)
        return value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return None


@register.filter(is_safe=True)
def when(value: Any) -> SafeString | str:
    """A ``<time>`` element: ``<time datetime="2026-12-07T14:03:00+00:00">2026-12-07 14:03 UTC</time>``
    (minutes, never microseconds); a dash for a missing value."""
    moment = _as_datetime(value)
    if moment is None:
        return _EMPTY if value in (None, "") else str(value)
    moment = moment.replace(microsecond=0)
    return format_html('<time datetime="{}">{}</time>', moment.isoformat(), moment.strftime("%Y-%m-%d %H:%M UTC"))


# A state's pill colour: the text always says the state, the colour only repeats it.
BADGES = {
    "badge-ok": {"succeeded", "success", "done", "finished", "active", "ok", "ready", "adjudicated", "answered", "yes"},
    "badge-warn": {"held", "queued", "pending", "skipped", "invited", "stale", "open", "warning"},
    "badge-err": {"failed", "error", "sent_back", "cancelled", "canceled", "expired", "deactivated", "no"},
    "badge-info": {"running", "started", "in_progress", "info"},
}


@register.filter
def badge_class(state: Any) -> str:
    """The classes of a status pill for ``state``: ``<span class="{{ job.status|badge_class }}">``."""
    key = str(state or "").strip().lower().replace(" ", "_").replace("-", "_")
    return next((f"badge {name}" for name, states in BADGES.items() if key in states), "badge")
