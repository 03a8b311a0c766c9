"""The announcement of finished jobs on Redis: one message per finished batch, on ``FINISHED_CHANNEL``, that each
web process's listener (``serving.web.frontdoor.FinishedListener``) hears. No Django here: only the format."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

FINISHED_CHANNEL = "fsml:jobs-finished"
MAX_CARRIED_STATE = 16_384  # characters of one job's ended state carried in its announcement; larger ones are read


def announcement(states: Iterable[dict[str, Any]]) -> str:
    """The message announcing finished jobs: a JSON list with each job's ended state (``{"id": ..., ...}``), so a
    waiting request answers without reading the job back; a state over ``MAX_CARRIED_STATE`` is sent as its id
    alone (its waiter reads the database)."""
    parts = []
    for state in states:
        text = json.dumps(state, separators=(",", ":"))
        parts.append(text if len(text) <= MAX_CARRIED_STATE else json.dumps({"id": state["id"]}))
    return "[" + ",".join(parts) + "]"


def announced(data: bytes) -> list[tuple[str, dict[str, Any] | None]]:
    """(job id, ended state or None when only the id was sent) for each job of an ``announcement``. A malformed
    message yields nothing, and entries that are not a state with an id are skipped."""
    try:
        states = json.loads(data)
    except ValueError:
        log.warning("ignored a malformed announcement of finished jobs: %.200r", data)
        return []
    if not isinstance(states, list):
        log.warning("ignored an announcement of finished jobs that is not a list: %.200r", data)
        return []
    return [
        (state["id"], state if len(state) > 1 else None)
        for state in states
        if isinstance(state, dict) and isinstance(state.get("id"), str)
    ]
