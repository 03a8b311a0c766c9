from __future__ import annotations

from django.contrib import admin

from datastore import models


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


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "task_type", "overlap", "created_at"]


@admin.register(models.Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "item", "status", "annotation_count"]
    list_filter = ["project", "status"]
    raw_id_fields = ["item"]


@admin.register(models.Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "annotator", "value", "lead_time", "created_at"]
    raw_id_fields = ["task"]


@admin.register(models.DatasetVersion)
class DatasetVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "dvc_md5", "git_rev", "created_at"]
    readonly_fields = [f.name for f in models.DatasetVersion._meta.fields]


@admin.register(models.ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "task_type", "dataset_version", "created_at"]
    readonly_fields = [f.name for f in models.ModelVersion._meta.fields]


@admin.register(models.InferenceJob)
class InferenceJobAdmin(admin.ModelAdmin):
    list_display = ["id", "model_version", "status", "worker", "queued_at", "finished_at"]
    list_filter = ["status", "model_version"]
