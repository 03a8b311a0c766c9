"""The item filter as a form: the Add items page and the optional crawl part of the new-project page."""

from __future__ import annotations

from typing import Any

from django import forms

from datastore.models import CrawlJob, Item, Project, Source
from datastore.selection import ItemFilter

CHOICE_ANY = [("", "any")]


class ItemFilterForm(forms.Form):
    """Every filter of ``datastore.selection.ItemFilter``; empty fields do not filter."""

    source = forms.ModelChoiceField(Source.objects.order_by("name"), required=False, empty_label="any source")
    crawl_job = forms.ModelChoiceField(
        CrawlJob.objects.select_related("source").order_by("-pk"), required=False, empty_label="any crawl job"
    )
    url_pattern = forms.CharField(
        required=False,
        max_length=500,
        label="URL pattern",
        help_text="A regular expression searched in the URL, e.g. /blog/ or ^https://",
    )
    fetched_after = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    fetched_before = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text="Inclusive."
    )
    languages = forms.CharField(required=False, max_length=200, help_text="Codes the crawler recorded, e.g. en, de")
    min_chars = forms.IntegerField(required=False, min_value=0, label="Text length from (characters)")
    max_chars = forms.IntegerField(required=False, min_value=0, label="Text length up to (characters)")
    has_images = forms.ChoiceField(
        required=False,
        choices=[*CHOICE_ANY, ("yes", "yes"), ("no", "no")],
        help_text="Image items, or pages with images.",
    )
    kind = forms.ChoiceField(required=False, choices=[*CHOICE_ANY, *Item.Kind.choices])
    not_in_project = forms.ModelChoiceField(
        Project.objects.order_by("name"), required=False, empty_label="(none)", label="Not already in project"
    )
    sample = forms.IntegerField(required=False, min_value=1, help_text="Take a random sample of this many.")
    seed = forms.IntegerField(required=False, initial=0, help_text="The same seed gives the same sample.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["crawl_job"].label_from_instance = (  # type: ignore[attr-defined]  # ModelChoiceField's hook
            lambda job: f"#{job.pk} {job.source.name} · {job.spider} · {job.started_at:%Y-%m-%d %H:%M} · {job.status}"
        )

    def is_empty(self) -> bool:
        """No field filled in (the form must be valid)."""
        return not any(value not in (None, "", []) for name, value in self.cleaned_data.items() if name != "seed")

    def to_filter(self) -> ItemFilter:
        """The cleaned form as a filter (the form must be valid)."""
        data = self.cleaned_data
        has_images = {"yes": True, "no": False}.get(data["has_images"])
        return ItemFilter(
            sources=[data["source"].name] if data["source"] else [],
            crawl_jobs=[data["crawl_job"].pk] if data["crawl_job"] else [],
            url_pattern=data["url_pattern"],
            fetched_after=data["fetched_after"].isoformat() if data["fetched_after"] else "",
            fetched_before=data["fetched_before"].isoformat() if data["fetched_before"] else "",
            languages=[s.strip().lower() for s in data["languages"].split(",") if s.strip()],
            min_chars=data["min_chars"],
            max_chars=data["max_chars"],
            has_images=has_images,
            kind=data["kind"],
            not_in_project=data["not_in_project"].name if data["not_in_project"] else "",
            sample=data["sample"],
            seed=data["seed"] or 0,
        )
