"""Forms of the manager pages. They check the shape of the input; the rules live in annotation.services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from annotation import formats, image_formats, image_imports
from annotation.api import MAX_IMPORT_BYTES
from annotation.services import Role
from annotation.validation import InvalidLabel, clean_hotkeys
from datastore.models import Project

MAX_LABEL_CHARS = 100
FORMAT_NAMES = {"labelstudio": "Label Studio JSON", "doccano": "doccano JSONL", "conll": "CoNLL (spans)", "csv": "CSV"}


class LabelsField(forms.CharField):
    """The label schema typed as text, one label per line; cleaned to a list of names."""

    widget = forms.Textarea(attrs={"rows": 5})
    default_error_messages = {"required": "Give at least one label, one per line."}

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]  # a list, not a string
        return [line.strip() for line in str(value or "").splitlines() if line.strip()]

    def validate(self, value: Any) -> None:
        super().validate(value)
        repeated = sorted({label for label in value if value.count(label) > 1})
        if repeated:
            raise forms.ValidationError(f"Each label once: {', '.join(repeated)} is given more than once.")
        long = [label for label in value if len(label) > MAX_LABEL_CHARS]
        if long:
            raise forms.ValidationError(f"Labels have at most {MAX_LABEL_CHARS} characters: {long[0][:40]}…")


class HotkeysField(forms.CharField):
    """A project's own label keys typed as text, one ``label = key`` per line; cleaned to ``{label: key}``.

    The split is at the last "=", so a label may contain one; the key itself is checked against the labels in
    the form's ``clean`` (annotation.validation.clean_hotkeys)."""

    widget = forms.Textarea(attrs={"rows": 4, "placeholder": "cat = c\ndog = d"})

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(f"{label} = {key}" for label, key in value.items()) if isinstance(value, dict) else value

    def to_python(self, value: Any) -> dict[str, str]:  # type: ignore[override]  # a mapping, not a string
        keys: dict[str, str] = {}
        for number, line in enumerate(str(value or "").splitlines(), 1):
            if not line.strip():
                continue
            label, equals, key = line.rpartition("=")
            if not equals or not label.strip() or not key.strip():
                raise forms.ValidationError(f"Line {number}: write “label = key”, e.g. “cat = c”.")
            if label.strip() in keys:
                raise forms.ValidationError(f"Line {number}: {label.strip()} has a key already; one key per label.")
            keys[label.strip()] = key.strip()
        return keys


class SettingsForm(forms.ModelForm):
    """What a manager may change on an existing project (not its task type)."""

    labels = LabelsField(help_text="One per line. Once anything is labelled, labels can be added but not removed.")
    overlap = forms.IntegerField(min_value=1, max_value=50, initial=1, help_text="Annotators per task.")
    lock_seconds = forms.IntegerField(
        min_value=30, max_value=86_400, initial=600, help_text="How long a task is held for the annotator who has it."
    )
    hotkeys = HotkeysField(
        required=False,
        label="Label keys",
        help_text="Optional, one “label = key” per line. Labels without one get 1–9, then 0, then letters, in "
        "label order. Not the page's own keys: u, s, n, f, g, ?, +, = and -.",
    )

    class Meta:
        model = Project
        fields = [
            "name",
            "labels",
            "hotkeys",
            "overlap",
            "lock_seconds",
            "queue_order",
            "allow_overlapping_spans",
            "guidelines",
        ]
        labels = {"allow_overlapping_spans": "Allow overlapping spans (span projects)"}
        help_texts = {"guidelines": "Markdown, shown beside every task."}

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if "labels" in data and "hotkeys" in data:
            try:
                data["hotkeys"] = clean_hotkeys(data["labels"], data["hotkeys"])
            except InvalidLabel as exc:
                self.add_error("hotkeys", exc.reason)
        return data


class NewProjectForm(SettingsForm):
    class Meta(SettingsForm.Meta):
        fields = ["name", "task_type", *SettingsForm.Meta.fields[1:]]


class AddMemberForm(forms.Form):
    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True),
        to_field_name="username",
        label="Username",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),  # a text box: the page lists no accounts
        error_messages={"invalid_choice": "No active user is named “%(value)s”."},
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.ANNOTATOR)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """One or more uploaded files, cleaned to a list (Django's documented recipe)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        single = super().clean
        if isinstance(data, list | tuple):
            if not data and self.required:  # an empty list skips FileField's own check
                raise forms.ValidationError(self.error_messages["required"], code="required")
            return [single(d, initial) for d in data]
        return [single(data, initial)]


class ImportForm(forms.Form):
    format = forms.ChoiceField(
        choices=[(name, FORMAT_NAMES[name]) for name in formats.FORMATS]
        + [("imagefolder", "Image folders (zip of class folders)"), ("images", "Image files")]
    )
    file = MultipleFileField(
        help_text="All or nothing: one bad record refuses the whole file. Labels become final (gold) labels. "
        "Image files (PNG, JPEG, GIF, WebP; several at once) go to image projects. Labelled images: one zip "
        "archive of class folders (optionally under train/, val/, test/), or with a CSV (image, label, split) or "
        "Label Studio JSON beside the files. Large imports run in the background."
    )

    def clean_file(self) -> Any:
        uploads = self.cleaned_data["file"]
        archive = len(uploads) == 1 and image_imports.is_archive(uploads[0])
        limit = image_formats.MAX_ARCHIVE_BYTES if archive else MAX_IMPORT_BYTES
        if sum(upload.size for upload in uploads) > limit:
            raise forms.ValidationError(f"the upload is larger than {limit} bytes")
        return uploads

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("format") not in (None, "images") and len(data.get("file") or []) > 1:
            self.add_error("file", "choose one file for this format (several files are for images)")
        return data
