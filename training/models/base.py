"""What every model of the zoo shares."""

from __future__ import annotations

from typing import Any


def constructor_args(local_vars: dict[str, Any]) -> dict[str, Any]:
    """A constructor's arguments from its ``locals()`` (called first thing), kept as ``model.hparams`` so
    ``type(model)(**model.hparams)`` rebuilds the model from a checkpoint."""
    return {k: v for k, v in local_vars.items() if k not in ("self", "__class__")}
