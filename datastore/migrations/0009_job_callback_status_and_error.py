"""A job's callback state as a choice (``callback_status``) with the reason in a column of its own
(``callback_error``), in place of free text read back by its prefix. Existing rows are converted both ways."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

# The free text that callback_status held before: "delivered", "not queued: REASON", "queued again",
# "gave up: refused: REASON", "gave up: REASON", or the last failure while retries went on.
NOT_QUEUED, GAVE_UP, REFUSED = "not queued: ", "gave up: ", "refused: "


def split_status(text: str, has_url: bool) -> tuple[str, str]:
    """(state, error) for a callback_status text as it was stored before this migration."""
    if text == "delivered":
        return "delivered", ""
    if text == "queued again":
        return "pending", ""
    if text.startswith(NOT_QUEUED):
        return "not queued", text.removeprefix(NOT_QUEUED)
    gave_up = text.startswith(GAVE_UP)
    reason = text.removeprefix(GAVE_UP)
    if reason.startswith(REFUSED):
        return "refused", reason.removeprefix(REFUSED)
    if gave_up:
        return "gave up", reason
    if text:
        return "retrying", text
    return ("pending" if has_url else ""), ""


def joined_status(state: str, error: str) -> str:
    """The text callback_status held before this migration for a (state, error)."""
    text = {
        "delivered": "delivered",
        "not queued": NOT_QUEUED + error,
        "refused": GAVE_UP + REFUSED + error,
        "gave up": GAVE_UP + error,
        "retrying": error,
    }.get(state, "")
    return text[:300]


def _jobs_with_callbacks(apps: Any) -> Any:
    job = apps.get_model("datastore", "InferenceJob")
    rows = job.objects.exclude(callback_url="", callback_status="").only("pk", "callback_url", "callback_status")
    return job, rows.order_by("pk")


def split_callback_status(apps: Any, schema_editor: Any) -> None:
    job, rows = _jobs_with_callbacks(apps)
    changed = []
    for row in rows.iterator(chunk_size=1000):
        row.callback_status, row.callback_error = split_status(row.callback_status, bool(row.callback_url))
        changed.append(row)
    job.objects.bulk_update(changed, ["callback_status", "callback_error"], batch_size=500)


def join_callback_status(apps: Any, schema_editor: Any) -> None:
    job, rows = _jobs_with_callbacks(apps)
    changed = []
    for row in rows.only("pk", "callback_status", "callback_error").iterator(chunk_size=1000):
        row.callback_status = joined_status(row.callback_status, row.callback_error)
        changed.append(row)
    job.objects.bulk_update(changed, ["callback_status"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("datastore", "0008_job_callbacks"),
    ]

    operations = [
        migrations.AddField(
            model_name="inferencejob",
            name="callback_error",
            field=models.TextField(blank=True, help_text="Why the callback's last attempt failed or stopped."),
        ),
        # While callback_status still holds the old text (300 characters), before it becomes a short choice.
        migrations.RunPython(split_callback_status, join_callback_status),
        migrations.AlterField(
            model_name="inferencejob",
            name="callback_status",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "no callback"),
                    ("pending", "pending"),
                    ("retrying", "retrying"),
                    ("delivered", "delivered"),
                    ("not queued", "not queued"),
                    ("refused", "refused"),
                    ("gave up", "gave up"),
                ],
                default="",
                max_length=16,
            ),
        ),
    ]
