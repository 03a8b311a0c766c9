"""A job's callback as durable state (an outbox): its delivery id, when its next attempt is due, when its prompt
message was last sent, and until when a worker holds it. No data to convert: a job that ended with its callback
``pending``, ``retrying`` or ``not queued`` and no due time is due from its end, so callbacks left owed before this
migration are sent once the workers run it."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("datastore", "0013_project_hotkeys_model_alias_plural"),
    ]

    operations = [
        migrations.AddField(
            model_name="inferencejob",
            name="callback_delivery",
            field=models.UUIDField(
                blank=True, help_text="Sent as X-Fsml-Delivery: the same on every attempt of the callback.", null=True
            ),
        ),
        migrations.AddField(
            model_name="inferencejob",
            name="callback_due_at",
            field=models.DateTimeField(blank=True, help_text="When the callback's next attempt is due.", null=True),
        ),
        migrations.AddField(
            model_name="inferencejob",
            name="callback_lease_until",
            field=models.DateTimeField(
                blank=True, help_text="Until when a worker holds the callback, sending it.", null=True
            ),
        ),
        migrations.AddField(
            model_name="inferencejob",
            name="callback_queued_at",
            field=models.DateTimeField(
                blank=True, help_text="When the callback's last prompt message was sent.", null=True
            ),
        ),
        migrations.AddIndex(
            model_name="inferencejob",
            index=models.Index(fields=["callback_status", "callback_due_at"], name="job_callbacks_due"),
        ),
    ]
