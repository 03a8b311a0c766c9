"""Forms of the team, question and guideline pages: the shape of the input; the rules are in the services."""

from __future__ import annotations

from django import forms

from annotation.services.guidelines import MAX_NOTE
from annotation.team.services import INVITABLE


class CreateAccountForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    email = forms.EmailField(required=False, help_text="Optional. The invitation is emailed when the site sends email.")
    role = forms.ChoiceField(choices=[(role.value, role.label) for role in INVITABLE])


class AnswerForm(forms.Form):
    answer = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    add_to_guidelines = forms.BooleanField(
        required=False, label="Add to the guidelines", help_text="Appends “Q: … A: …” as a new guideline version."
    )


class GuidelinesForm(forms.Form):
    guidelines = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 12}), help_text="Markdown, shown beside every task."
    )
    note = forms.CharField(
        required=False, max_length=MAX_NOTE, label="What changed", help_text="One line, shown with the version."
    )
