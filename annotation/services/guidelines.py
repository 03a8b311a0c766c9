"""Versioned guidelines: every edit makes a new ``GuidelineVersion``, every annotation records the version it
was made under, and agreement can be read per version to see whether a change helped.

``Project.guidelines`` stays the current text (the label page shows it). A project made before versions existed
has none until its first edit or its first annotation, which creates version 1 from the text it had then.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from typing import Any

from django.db import IntegrityError, transaction

from annotation.agreement import agreement
from annotation.services.access import AnnotationError, Role, require_role
from datastore.models import Annotation, GuidelineVersion, Project

MAX_NOTE = 500


def current_guideline_version(project: Project, user: Any = None) -> GuidelineVersion:
    """The project's newest guideline version; version 1, from the current text, when it has none yet.

    Runs inside the callers' transactions and locks nothing in the common case (one indexed read): it is on
    every submit. Two requests creating version 1 at once both try the insert; the loser reads the winner's.
    """
    latest = GuidelineVersion.objects.filter(project_id=project.pk).order_by("-number").first()
    if latest is not None:
        return latest
    try:
        with transaction.atomic():  # a savepoint: the duplicate insert must not spoil the caller's transaction
            return GuidelineVersion.objects.create(
                project_id=project.pk, number=1, text=project.guidelines, created_by=user
            )
    except IntegrityError:
        # A locking read: it sees the committed row that a plain read of this transaction's snapshot may not.
        with transaction.atomic():
            return GuidelineVersion.objects.select_for_update().get(project_id=project.pk, number=1)


def record_guidelines(project: Project, user: Any, text: str, note: str = "") -> GuidelineVersion | None:
    """Make ``text`` the next guideline version of ``project``, whose row the caller holds locked.

    Returns the new version, or None when ``text`` is the current text (nothing to version). The caller saves
    ``project.guidelines`` itself (``update_settings`` saves every changed field at once).
    """
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise AnnotationError(f"a guideline note has at most {MAX_NOTE} characters")
    current = current_guideline_version(project, user)
    if current.text == text:
        return None
    # The project row is locked, so no other edit numbers a version meanwhile; a locking read sees them all.
    number = 1 + max(
        GuidelineVersion.objects.select_for_update().filter(project_id=project.pk).values_list("number", flat=True)
    )
    return GuidelineVersion.objects.create(project=project, number=number, text=text, note=note, created_by=user)


def edit_guidelines(project: Project, user: Any, text: str, note: str = "") -> GuidelineVersion | None:
    """A manager's guideline edit: the new text becomes the current one and the next version."""
    require_role(project, user, Role.MANAGER)
    with transaction.atomic():
        current = Project.objects.select_for_update().get(pk=project.pk)
        version = record_guidelines(current, user, text, note)
        if version is not None:
            current.guidelines = text
            current.save(update_fields=["guidelines"])
    project.guidelines = current.guidelines
    return version


def add_answer_to_guidelines(question: Any, user: Any) -> GuidelineVersion:
    """Append an answered question to the guidelines as a "Q: ... A: ..." entry (a new version), and link it.

    The caller holds the question's row locked; a question already added is refused.
    """
    project = question.project
    require_role(project, user, Role.MANAGER, Role.REVIEWER)
    if not question.answer:
        raise AnnotationError("answer the question before adding it to the guidelines", 409)
    if question.added_to_guidelines_id is not None:
        raise AnnotationError("this question is already in the guidelines", 409)
    with transaction.atomic():
        current = Project.objects.select_for_update().get(pk=project.pk)
        entry = f"**Q:** {question.text.strip()}\n\n**A:** {question.answer.strip()}"
        text = f"{current.guidelines.rstrip()}\n\n{entry}\n" if current.guidelines.strip() else f"{entry}\n"
        version = record_guidelines(current, user, text, f"Added question #{question.pk}")
        assert version is not None  # the entry makes the text longer
        current.guidelines = text
        current.save(update_fields=["guidelines"])
        question.added_to_guidelines = version
        question.save(update_fields=["added_to_guidelines"])
    return version


def history(project: Project) -> list[dict[str, Any]]:
    """Every version, newest first, with its note, author, date and a unified diff from the one before."""
    versions = list(GuidelineVersion.objects.filter(project=project).select_related("created_by").order_by("number"))
    rows = []
    previous = ""
    for version in versions:
        diff = difflib.unified_diff(
            previous.splitlines(),
            version.text.splitlines(),
            f"v{version.number - 1}",
            f"v{version.number}",
            lineterm="",
        )
        rows.append(
            {
                "number": version.number,
                "note": version.note,
                "created_by": version.created_by.username if version.created_by else None,
                "created_at": version.created_at,
                "text": version.text,
                "diff": "\n".join(diff) if version.number > 1 else "",
            }
        )
        previous = version.text
    return rows[::-1]


def agreement_by_version(project: Project) -> list[dict[str, Any]]:
    """Agreement (``annotation.agreement``) of the annotations made under each guideline version, oldest first.

    Annotations made before versions were recorded are the row with ``number`` None. Each row: number, note,
    created_at, annotations, tasks, tasks_labelled_twice, and the agreement figures of those annotations alone
    (``krippendorff_alpha`` and ``fleiss_kappa`` None where no task was labelled twice under the version).
    """
    grouped: dict[int | None, list[dict[str, Any]]] = defaultdict(list)
    rows = Annotation.objects.filter(task__project=project).values(
        "task_id", "annotator__username", "value", "task__item__text", "guideline_version_id"
    )
    for r in rows.iterator():
        grouped[r["guideline_version_id"]].append(
            {
                "task": r["task_id"],
                "annotator": r["annotator__username"],
                "value": r["value"],
                "text": r["task__item__text"],
            }
        )
    versions = {v.pk: v for v in GuidelineVersion.objects.filter(project=project)}
    keys: list[int | None] = [None] if None in grouped else []
    keys += [v.pk for v in sorted(versions.values(), key=lambda v: v.number)]
    out = []
    for key in keys:
        annotations = grouped.get(key, [])
        version = versions.get(key) if key is not None else None
        per_task: defaultdict[Any, int] = defaultdict(int)
        for a in annotations:
            per_task[a["task"]] += 1
        paired = sum(1 for n in per_task.values() if n >= 2)
        # Without a task labelled twice under the version there is nothing to agree on (the measures read 1.0).
        figures = agreement(project.task_type, project.labels, annotations) if paired else {}
        figures.setdefault("krippendorff_alpha", None)
        figures.setdefault("fleiss_kappa", None)
        out.append(
            {
                "number": version.number if version else None,
                "note": version.note if version else "annotations made before guideline versions were recorded",
                "created_at": version.created_at if version else None,
                "annotations": len(annotations),
                "tasks": len(per_task),
                "tasks_labelled_twice": paired,
                **figures,
            }
        )
    return out
