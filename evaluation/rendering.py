"""Server-side rendering helpers of the case page: scores in order, spans highlighted with escaping, span tables."""

from __future__ import annotations

from typing import Any

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from datastore.models import Prediction
from evaluation.evaluate import span_key


def sorted_scores(scores: Any) -> list[tuple[str, float]]:
    if not isinstance(scores, dict):
        return []
    numeric = [(str(k), float(v)) for k, v in scores.items() if isinstance(v, int | float)]
    return sorted(numeric, key=lambda kv: -kv[1])


def highlight(text: str, spans: Any) -> SafeString:
    """``text`` escaped, each span wrapped in ``<mark data-label=...>``; spans overlapping an earlier one, empty
    or outside the text are left out here (the span table lists every span)."""
    parts, cursor = [], 0
    for start, end, label in sorted(span_key(spans)):
        if start < cursor or end <= start or end > len(text):
            continue
        parts += [
            escape(text[cursor:start]),
            format_html('<mark data-label="{}">{}</mark>', label, text[start:end]),
        ]
        cursor = end
    parts.append(escape(text[cursor:]))
    return mark_safe("".join(parts))  # safe: every part above is escaped or built by format_html


def span_rows(prediction: Prediction) -> list[dict[str, Any]]:
    """Every true and predicted span with its text: a match (listed once), missed or extra."""
    true, predicted = sorted(span_key(prediction.true_value)), sorted(span_key(prediction.predicted_value))
    rows = [(span, "true", "match" if span in predicted else "missed") for span in true]
    rows += [(span, "predicted", "extra") for span in predicted if span not in true]
    return [
        {"start": s, "end": e, "label": label, "text": prediction.text[s:e], "side": side, "outcome": outcome}
        for (s, e, label), side, outcome in rows
    ]
