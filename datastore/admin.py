"""The admin: every record of fsml, with the columns, filters and searches that find one; the pages of the app
(projects, data manager, evaluations) stay the place to work on them. Records that are history (alias moves,
evaluations and their cases) are read-only here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages

from datastore import models
from datastore.services import registry
from datastore.services.registry import RegistryError


@admin.register(models.Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["name", "base_url", "created_at"]


@admin.register(models.CrawlJob)
class CrawlJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "source",
        "spider",
        "status",
        "pages_crawled",
        "items_stored",
        "errors",
        "started_at",
    ]
    list_filter = ["status", "source"]


@admin.register(models.Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["id", "source", "kind", "title", "canonical_url", "fetched_at"]
    list_filter = ["source", "kind"]
    search_fields = ["title", "text", "canonical_url"]


class MemberInline(admin.TabularInline):
    model = models.ProjectMember
    extra = 0
    raw_id_fields = ["user"]
    fields = ["user", "role", "is_active", "added_at"]
    readonly_fields = ["added_at"]


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "task_type", "overlap", "queue_order", "created_at"]
    list_filter = ["task_type"]
    search_fields = ["name"]
    inlines = [MemberInline]


@admin.register(models.ProjectMember)
class ProjectMemberAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "is_active", "added_at"]
    list_filter = ["role", "is_active", "project"]
    search_fields = ["user__username", "project__name"]
    raw_id_fields = ["user"]


@admin.register(models.GuidelineVersion)
class GuidelineVersionAdmin(admin.ModelAdmin):
    list_display = ["project", "number", "note", "created_by", "created_at"]
    list_filter = ["project"]
    search_fields = ["text", "note"]
    readonly_fields = [f.name for f in models.GuidelineVersion._meta.fields]


@admin.register(models.SourceFeed)
class SourceFeedAdmin(admin.ModelAdmin):
    list_display = ["project", "source", "active", "items_added", "created_by", "created_at"]
    list_filter = ["active", "source", "project"]


@admin.register(models.ProjectJob)
class ProjectJobAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "kind", "status", "done", "total", "created_by", "created_at", "finished_at"]
    list_filter = ["kind", "status", "project"]
    readonly_fields = [f.name for f in models.ProjectJob._meta.fields]


@admin.register(models.Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "short_text", "asked_by", "answered", "answered_by", "created_at"]
    list_filter = ["project", ("answered_at", admin.EmptyFieldListFilter)]
    search_fields = ["text", "answer", "asked_by__username"]
    raw_id_fields = ["task", "added_to_guidelines"]
    date_hierarchy = "created_at"

    @admin.display(description="question")
    def short_text(self, question: models.Question) -> str:
        return question.text if len(question.text) <= 80 else question.text[:79] + "…"

    @admin.display(description="answered", boolean=True)
    def answered(self, question: models.Question) -> bool:
        return bool(question.answer)


@admin.register(models.Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "item", "status", "annotation_count"]
    list_filter = ["project", "status"]
    raw_id_fields = ["item"]


@admin.register(models.Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "annotator", "value", "lead_time", "created_at"]
    list_filter = ["task__project"]
    search_fields = ["annotator__username"]
    raw_id_fields = ["task"]


@admin.register(models.RelabelRequest)
class RelabelRequestAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "requested_by", "reason", "prediction", "created_at"]
    list_filter = ["task__project"]
    search_fields = ["reason"]
    readonly_fields = [f.name for f in models.RelabelRequest._meta.fields]


@admin.register(models.DatasetVersion)
class DatasetVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "dvc_md5", "git_rev", "created_at"]
    readonly_fields = [f.name for f in models.DatasetVersion._meta.fields]


def _moves(modeladmin: admin.ModelAdmin, request: Any, calls: list[tuple[str, Any]]) -> None:
    """Run registry moves, one message each: what moved, or why it did not."""
    for label, call in calls:
        try:
            move = call()
        except RegistryError as exc:
            modeladmin.message_user(request, f"{label}: {exc.reason}", level=messages.ERROR)
        else:
            was = f"version {move.from_version.version}" if move.from_version else "nothing"
            now = move.to_version.version
            modeladmin.message_user(request, f"{label}: {move.name}@{move.alias} {was} -> version {now}")


def _promote_action(stage: str) -> Any:
    @admin.action(description=f"Promote to {stage}", permissions=["change"])
    def promote(modeladmin: admin.ModelAdmin, request: Any, queryset: Any) -> None:
        calls = [
            (str(v), lambda v=v: registry.promote(v.name, v.version, stage, request.user, via="admin"))
            for v in queryset.order_by("name", "version")
        ]
        _moves(modeladmin, request, calls)

    promote.__name__ = f"promote_to_{stage}"
    return promote


@admin.register(models.ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "task_type", "dataset_version", "created_at"]
    list_filter = ["name"]
    readonly_fields = [f.name for f in models.ModelVersion._meta.fields]
    actions = [_promote_action("staging"), _promote_action("production")]


@admin.register(models.ModelAlias)
class ModelAliasAdmin(admin.ModelAdmin):
    list_display = ["name", "alias", "model_version", "updated_by", "updated_at"]
    readonly_fields = [f.name for f in models.ModelAlias._meta.fields]
    actions = ["roll_back"]

    def has_add_permission(self, request: Any) -> bool:
        return False  # aliases move through promotions (the versions' action), so every move is logged

    @admin.action(description="Roll back to the version named before", permissions=["change"])
    def roll_back(self, request: Any, queryset: Any) -> None:
        calls = [(str(a), lambda a=a: registry.rollback(a.name, a.alias, request.user, via="admin")) for a in queryset]
        _moves(self, request, calls)


@admin.register(models.AliasMove)
class AliasMoveAdmin(admin.ModelAdmin):
    list_display = ["created_at", "name", "alias", "action", "from_version", "to_version", "actor", "reason"]
    list_filter = ["name", "alias", "action"]
    readonly_fields = [f.name for f in models.AliasMove._meta.fields]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False  # the log of moves is kept whole


@admin.register(models.InferenceJob)
class InferenceJobAdmin(admin.ModelAdmin):
    list_display = ["id", "model_version", "status", "worker", "queued_at", "finished_at"]
    list_filter = ["status", "model_version"]
    search_fields = ["model_ref", "idempotency_key"]


@admin.register(models.Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    """Evaluations as ``fsml evaluate`` stored them: read-only (run a new one to change the figures)."""

    list_display = ["id", "model_version", "dataset_version", "split", "task_type", "n", "score", "macro_f1",
                    "created_at"]  # fmt: skip
    list_filter = ["task_type", "split", "model_version__name", "dataset_version"]
    search_fields = ["model_version__name", "dataset_version__name"]
    readonly_fields = [f.name for f in models.Evaluation._meta.fields]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: Any) -> bool:
        return False


@admin.register(models.Prediction)
class PredictionAdmin(admin.ModelAdmin):
    """One case of an evaluation (its page in the app: /evaluations/<id>/cases/<id>/)."""

    list_display = ["id", "evaluation", "record_id", "true_label", "predicted_label", "confidence", "correct"]
    list_filter = ["correct", "evaluation"]
    search_fields = ["record_id", "text", "true_label", "predicted_label"]
    readonly_fields = [f.name for f in models.Prediction._meta.fields]
    list_select_related = ["evaluation__model_version", "evaluation__dataset_version"]

    def has_add_permission(self, request: Any) -> bool:
        return False
