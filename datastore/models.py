"""Models of record: what was crawled, what was labelled, which versions were frozen and served."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import models


class Source(models.Model):
    """A site or feed that items are collected from, with the terms its data comes under."""

    name = models.CharField(max_length=100, unique=True)
    base_url = models.URLField(max_length=500)
    licence_note = models.TextField(blank=True, help_text="Licence or terms that collected data is under.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class CrawlJob(models.Model):
    """One run of a spider against a source."""

    class Status(models.TextChoices):
        RUNNING = "running"
        FINISHED = "finished"
        FAILED = "failed"

    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="crawl_jobs")
    spider = models.CharField(max_length=100)
    start_urls = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    pages_crawled = models.PositiveIntegerField(default=0)
    items_stored = models.PositiveIntegerField(default=0, help_text="New items.")
    items_updated = models.PositiveIntegerField(default=0, help_text="Known URLs whose content changed.")
    items_unchanged = models.PositiveIntegerField(default=0)
    items_duplicate = models.PositiveIntegerField(default=0, help_text="Content already stored elsewhere.")
    items_failed = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    stats = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.spider}#{self.pk} ({self.status})"

    @property
    def rate(self) -> float:
        """Pages per second over the job's life so far."""
        from django.utils import timezone

        seconds = ((self.finished_at or timezone.now()) - self.started_at).total_seconds()
        return self.pages_crawled / seconds if seconds > 0 else 0.0


class Item(models.Model):
    """A crawled piece of raw data: a text or an image, with where and when it came from."""

    class Kind(models.TextChoices):
        TEXT = "text"
        IMAGE = "image"

    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="items")
    crawl_job = models.ForeignKey(CrawlJob, on_delete=models.SET_NULL, null=True, blank=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.TEXT)
    url = models.URLField(max_length=2000)
    canonical_url = models.URLField(max_length=2000)
    url_hash = models.CharField(max_length=64, help_text="SHA-256 of the canonical URL.")
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of the extracted content.")
    title = models.CharField(max_length=500, blank=True)
    text = models.TextField(blank=True)
    image = models.CharField(max_length=500, blank=True, help_text="Path of the image in the file store.")
    metadata = models.JSONField(default=dict, blank=True)
    http_status = models.PositiveSmallIntegerField(default=200)
    robots = models.CharField(
        max_length=16,
        default="allowed",
        help_text="robots.txt decision: allowed, or not_checked when ignored.",
    )
    fetched_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "url_hash"], name="item_unique_url_per_source"),
            models.UniqueConstraint(fields=["source", "content_hash"], name="item_unique_content_per_source"),
        ]

    def __str__(self) -> str:
        return self.canonical_url


class Project(models.Model):
    """An annotation project: which items to label, with which label schema."""

    class TaskType(models.TextChoices):
        TEXT_CLASSIFICATION = "text_classification"
        MULTI_LABEL = "multi_label"
        SPANS = "spans"
        IMAGE_CLASSIFICATION = "image_classification"

    class QueueOrder(models.TextChoices):
        SEQUENTIAL = "sequential"
        UNCERTAINTY = "uncertainty", "most uncertain model prediction first"

    name = models.CharField(max_length=100, unique=True)
    task_type = models.CharField(max_length=32, choices=TaskType.choices)
    labels = models.JSONField(help_text="The label schema: a list of label names.")
    guidelines = models.TextField(blank=True, help_text="Markdown shown beside every task.")
    overlap = models.PositiveSmallIntegerField(default=1, help_text="Annotators per task.")
    allow_overlapping_spans = models.BooleanField(default=False)
    hotkeys = models.JSONField(
        default=dict,
        blank=True,
        help_text="The project's own keys for labels, {label: key}; the others get 1-9, 0, then letters.",
    )
    lock_seconds = models.PositiveIntegerField(default=600, help_text="How long an assignment is held.")
    queue_order = models.CharField(max_length=16, choices=QueueOrder.choices, default=QueueOrder.SEQUENTIAL)
    members: models.ManyToManyField = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="ProjectMember", blank=True, related_name="projects"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class ProjectMember(models.Model):
    """A user's role in a project. Managers run it, reviewers adjudicate, annotators label."""

    class Role(models.TextChoices):
        MANAGER = "manager"
        REVIEWER = "reviewer"
        ANNOTATOR = "annotator"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    is_active = models.BooleanField(
        default=True, help_text="A deactivated member keeps their history but is handed no task and sees no page."
    )
    added_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="member_once_per_project")]


class GuidelineVersion(models.Model):
    """One version of a project's guidelines. Every annotation records the version it was made under, so
    agreement can be compared before and after a change."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="guideline_versions")
    number = models.PositiveIntegerField()
    text = models.TextField(blank=True)
    note = models.CharField(max_length=500, blank=True, help_text="What changed, in a line.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="guideline_version_unique")]

    def __str__(self) -> str:
        return f"{self.project} guidelines v{self.number}"


class SourceFeed(models.Model):
    """A project that follows a source: items that later crawls store and that pass ``filters`` become tasks
    as they arrive (Label Studio's storage sync)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="feeds")
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="feeds")
    filters = models.JSONField(default=dict, blank=True, help_text="The item filters of datastore.selection.")
    active = models.BooleanField(default=True)
    items_added = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "source"], name="feed_once_per_project_source")]


class ProjectJob(models.Model):
    """Background work on a project (pre-annotation, a large import, adding items), run by a Celery worker,
    with progress. A failed job keeps its reason and has written nothing."""

    class Kind(models.TextChoices):
        PREANNOTATE = "preannotate"
        IMPORT = "import"
        ADD_ITEMS = "add_items"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    params = models.JSONField(default=dict, blank=True)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["project", "created_at"])]


class Task(models.Model):
    """One item to be labelled within a project."""

    class Status(models.TextChoices):
        OPEN = "open"
        DONE = "done"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="tasks")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    annotation_count = models.PositiveSmallIntegerField(default=0)
    agreement = models.FloatField(
        null=True,
        blank=True,
        help_text="Share of the annotations equal to the most common one (null: none), kept by annotation.services.",
    )
    prediction = models.JSONField(null=True, blank=True, help_text="A model's suggestion (pre-annotation).")
    uncertainty = models.FloatField(null=True, blank=True, help_text="1 - top confidence of the prediction.")
    final_value = models.JSONField(null=True, blank=True, help_text="The adjudicated label.")
    split = models.CharField(
        max_length=8, blank=True, default="", help_text="train, val or test fixed by an import; empty: hash split."
    )
    adjudicated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    adjudicated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "item"], name="task_unique_item")]
        indexes = [
            models.Index(fields=["project", "status", "id"]),
            models.Index(fields=["project", "status", "uncertainty"]),
            # The data manager sorts a whole project by these without a filesort.
            models.Index(fields=["project", "uncertainty"], name="task_project_uncertainty"),
            models.Index(fields=["project", "annotation_count"], name="task_project_annotations"),
            models.Index(fields=["project", "created_at"], name="task_project_created"),
            models.Index(fields=["project", "agreement"], name="task_project_agreement"),
        ]


class Assignment(models.Model):
    """A task handed to one annotator: held until submitted, skipped or expired. One per (task, annotator),
    so nobody is handed the same task twice."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        SUBMITTED = "submitted"
        SKIPPED = "skipped"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    assigned_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    skip_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "annotator"], name="assignment_once_per_annotator")]
        indexes = [models.Index(fields=["annotator", "status", "expires_at"])]


class Question(models.Model):
    """A question an annotator asks about an unclear case; a manager answers it for everyone."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="questions")
    task = models.ForeignKey(Task, on_delete=models.SET_NULL, null=True, blank=True, related_name="questions")
    asked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    answer = models.TextField(blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    added_to_guidelines = models.ForeignKey(
        GuidelineVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="questions"
    )
    created_at = models.DateTimeField(auto_now_add=True)


class Annotation(models.Model):
    """One annotator's answer to one task."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    value = models.JSONField(help_text="The label: a name, a list of names, or a list of spans.")
    lead_time = models.FloatField(default=0.0, help_text="Seconds the annotator spent.")
    guideline_version = models.ForeignKey(
        GuidelineVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="annotations"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "annotator"], name="annotation_once_per_annotator")]


def labels_in(value: Any) -> set[str]:
    """The label names a stored value carries: a name, each name of a list, each span's label."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return {v for v in value if isinstance(v, str)} | {
            v["label"] for v in value if isinstance(v, dict) and isinstance(v.get("label"), str)
        }
    return set()


def label_key(name: str) -> str:
    """A label name as a TaskLabel keeps it: exact under any collation (MariaDB's compare "Pos" = "pos ") and
    of one length whatever the name's."""
    return hashlib.sha256(name.encode()).hexdigest()[:32]


class TaskLabel(models.Model):
    """A label a task carries in its final value or in any of its annotations: the data manager's label filter
    is an indexed semi-join on these rows, not a scan of every annotation's JSON. Kept by ``refresh`` wherever
    annotations or final values are written (submit, undo, send back, adjudication, imports of gold labels)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="label_rows")
    key = models.CharField(max_length=32, help_text="label_key(the label's name).")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "key"], name="task_label_once")]
        indexes = [models.Index(fields=["project", "key", "task"], name="task_label_filter")]

    @staticmethod
    def refresh(task_ids: Iterable[int]) -> None:
        """Make these tasks' rows match their final values and annotations (call it under the task's lock)."""
        ids = list(task_ids)
        for start in range(0, len(ids), 2000):
            chunk = ids[start : start + 2000]
            wanted: dict[int, set[str]] = {}
            project_of: dict[int, int] = {}
            tasks = Task.objects.filter(pk__in=chunk).values_list("pk", "project_id", "final_value")
            for pk, project_id, final in tasks:
                project_of[pk], wanted[pk] = project_id, {label_key(name) for name in labels_in(final)}
            for task_id, value in Annotation.objects.filter(task_id__in=chunk).values_list("task_id", "value"):
                wanted[task_id] |= {label_key(name) for name in labels_in(value)}
            stale, have = [], set()
            for pk, task_id, key in TaskLabel.objects.filter(task_id__in=chunk).values_list("pk", "task_id", "key"):
                if key in wanted.get(task_id, ()):
                    have.add((task_id, key))
                else:
                    stale.append(pk)
            if stale:
                TaskLabel.objects.filter(pk__in=stale).delete()
            TaskLabel.objects.bulk_create(
                TaskLabel(task_id=task_id, project_id=project_of[task_id], key=key)
                for task_id, keys in wanted.items()
                for key in sorted(keys)
                if (task_id, key) not in have
            )


class DatasetVersion(models.Model):
    """An immutable snapshot of a project's labels, stored with DVC."""

    name = models.CharField(max_length=100, unique=True)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="dataset_versions")
    dvc_md5 = models.CharField(max_length=64)
    git_rev = models.CharField(max_length=64)
    path = models.CharField(max_length=300, help_text="Folder of the snapshot inside the data repository.")
    counts = models.JSONField(default=dict)
    label_distribution = models.JSONField(default=dict)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    """A packaged model: an archive with a manifest, trained from a dataset version."""

    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    task_type = models.CharField(max_length=32, choices=Project.TaskType.choices)
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, null=True, blank=True)
    archive_path = models.CharField(max_length=500)
    archive_sha256 = models.CharField(max_length=64)
    manifest = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="model_version_unique")]

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"


class ModelAlias(models.Model):
    """A movable name for one version of a model: a stage (``staging``, ``production``) or any alias.

    Versions never change; aliases move (``datastore.services.registry.promote`` / ``rollback``), and every move is
    kept as an ``AliasMove``. Jobs that name ``NAME@ALIAS`` are served by the version the alias points to
    when a worker takes the job.
    """

    name = models.CharField(max_length=100)
    alias = models.CharField(max_length=40)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "alias"], name="model_alias_unique")]
        verbose_name_plural = "model aliases"  # Django's default adds an "s": "model aliass"

    def __str__(self) -> str:
        return f"{self.name}@{self.alias}"


class AliasMove(models.Model):
    """One move of an alias, with who made it, when, from which version to which, and why."""

    class Action(models.TextChoices):
        PROMOTE = "promote"
        ROLLBACK = "rollback"

    name = models.CharField(max_length=100)
    alias = models.CharField(max_length=40)
    action = models.CharField(max_length=16, choices=Action.choices)
    from_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    to_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    moved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    actor = models.CharField(max_length=200, help_text='Who, and through what: "alice (api)", "root (cli)".')
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["name", "alias", "created_at"])]


class InferenceJob(models.Model):
    """One inference request from a backend service, from submission to result."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class CallbackStatus(models.TextChoices):
        """Where a job's callback stands; ``callback_error`` says why it is not delivered (yet)."""

        NONE = "", "no callback"
        PENDING = "pending", "pending"  # to be POSTed once the job ends; then due (callback_due_at)
        RETRYING = "retrying", "retrying"  # the last attempt failed; the next is due at callback_due_at
        DELIVERED = "delivered", "delivered"  # the receiver answered 2xx
        NOT_QUEUED = "not queued", "not queued"  # due, its prompt could not be sent: a requeue loop prompts it
        REFUSED = "refused", "refused"  # a host this deployment may not call (FSML_CALLBACK_ALLOWED_HOSTS): no retry
        GAVE_UP = "gave up", "gave up"  # every retry failed

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="jobs", help_text="The version that served the job."
    )
    model_ref = models.CharField(
        max_length=150, blank=True, help_text="What the caller asked for: NAME, NAME:VERSION or NAME@ALIAS."
    )
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    inputs = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True, help_text="Celery hostname that served the job.")
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A worker that takes a job claims it (with the queued jobs of the same model that make up its batch) under a
    # token and a lease; only the holder of the current claim can finish it, and a lapsed lease (its worker died)
    # puts the job back in the queue. So every job ends exactly once, whoever delivers its message.
    claim = models.UUIDField(null=True, blank=True, help_text="Token of the worker's claim on a running job.")
    lease_until = models.DateTimeField(null=True, blank=True, help_text="When a running job's claim lapses.")
    batch_size = models.PositiveIntegerField(null=True, blank=True, help_text="Inputs in the batch that ran it.")
    callback_url = models.URLField(max_length=500, blank=True, help_text="POSTed the finished job, with retries.")
    callback_status = models.CharField(
        max_length=16, choices=CallbackStatus.choices, blank=True, default=CallbackStatus.NONE
    )
    callback_error = models.TextField(blank=True, help_text="Why the callback's last attempt failed or stopped.")
    callback_attempts = models.PositiveSmallIntegerField(default=0)
    # The callback's outbox: written in the transaction that ends the job, so a delivery is owed whatever happens to
    # the message that prompts it (``serving.worker.delivery``). A job ended with its callback pending or retrying is
    # due from callback_due_at (empty: from its end); a sender holds it until callback_lease_until.
    callback_delivery = models.UUIDField(
        null=True, blank=True, help_text="Sent as X-Fsml-Delivery: the same on every attempt of the callback."
    )
    callback_due_at = models.DateTimeField(null=True, blank=True, help_text="When the callback's next attempt is due.")
    callback_queued_at = models.DateTimeField(
        null=True, blank=True, help_text="When the callback's last prompt message was sent."
    )
    callback_lease_until = models.DateTimeField(
        null=True, blank=True, help_text="Until when a worker holds the callback, sending it."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["submitted_by", "idempotency_key"], name="job_idempotency_key_per_client")
        ]
        indexes = [
            models.Index(fields=["status", "queued_at"]),
            models.Index(fields=["status", "model_ref", "queued_at"], name="job_batch_candidates"),
            models.Index(fields=["status", "lease_until"], name="job_lapsed_leases"),
            models.Index(fields=["callback_status", "callback_due_at"], name="job_callbacks_due"),
        ]


class Evaluation(models.Model):
    """One model version scored on one split of one dataset version, with every prediction kept
    (``predictions``). Evaluating the same triple again replaces it: the leaderboard holds the latest."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="evaluations")
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="evaluations")
    split = models.CharField(max_length=16)
    task_type = models.CharField(max_length=32, choices=Project.TaskType.choices)
    labels = models.JSONField(help_text="The model's label list, in its output order.")
    metrics = models.JSONField(default=dict)
    n = models.PositiveIntegerField(default=0)
    score = models.FloatField(help_text="Headline figure: accuracy, or micro F1 for multi-label and spans.")
    macro_f1 = models.FloatField()
    backend = models.CharField(max_length=32, default="onnxruntime")
    seconds = models.FloatField(default=0.0, help_text="Time to predict and score.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "dataset_version", "split"], name="evaluation_unique_model_data_split"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_version} on {self.dataset_version}:{self.split}"


class Prediction(models.Model):
    """One record of an evaluated split: what the version says, what the model said, how sure it was.

    ``true_label`` and ``predicted_label`` are the label names for single-label tasks and a
    comma-joined sorted list for multi-label ones (empty for spans), so filters and the confusion matrix
    are plain indexed equality look-ups; ``true_value`` and ``predicted_value`` keep the full values.
    """

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="predictions")
    record_id = models.CharField(max_length=64, help_text="The record's id in the version (the item's url_hash).")
    item = models.ForeignKey(Item, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    text = models.TextField(blank=True, help_text="The text as frozen in the dataset version.")
    image = models.CharField(max_length=300, blank=True, help_text="Image path inside the dataset version.")
    true_label = models.CharField(max_length=200, blank=True)
    predicted_label = models.CharField(max_length=200, blank=True)
    true_value = models.JSONField(null=True)
    predicted_value = models.JSONField(null=True)
    confidence = models.FloatField()
    correct = models.BooleanField()
    scores = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["evaluation", "record_id"], name="prediction_unique_record"),
        ]
        indexes = [
            models.Index(fields=["evaluation", "true_label", "predicted_label"]),
            models.Index(fields=["evaluation", "correct", "confidence"]),
            models.Index(fields=["evaluation", "confidence"]),
        ]


class RelabelRequest(models.Model):
    """A labelled task sent back to the annotation queue (from a wrong case of an evaluation, say), with the
    reason, and everything it had before: the adjudicated label, the annotations and who made them."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="relabel_requests")
    prediction = models.ForeignKey(
        Prediction, on_delete=models.SET_NULL, null=True, blank=True, related_name="relabel_requests"
    )
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=500)
    previous = models.JSONField(help_text="final_value, annotations and assignments before the task reopened.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["task", "created_at"])]
