"""Every write of the annotation workflow, by stage: ``access`` (roles and refusals), ``projects`` (a project,
its settings and members), ``queue`` (handing out tasks, labels, skips, undo), ``imports`` (tasks from files
and images), ``review`` (adjudication, agreement, dashboards, questions) and ``relabel`` (sending a labelled
task back). Callers import from here; a model's suggestions are ``annotation.preannotation``."""

from annotation.services.access import (
    AnnotationError,
    Role,
    can_create_projects,
    project_for_user,
    require_role,
    role_of,
)
from annotation.services.guidelines import (
    add_answer_to_guidelines,
    agreement_by_version,
    current_guideline_version,
    edit_guidelines,
)
from annotation.services.imports import (
    MAX_IMAGE_FILES,
    MAX_IMPORT_RECORDS,
    count_labelled_images,
    import_file,
    import_images,
    import_labelled_images,
    import_records,
)
from annotation.services.projects import (
    SETTINGS,
    add_member,
    change_role,
    create_project,
    has_labels,
    remove_member,
    set_role,
    start_project,
    update_settings,
)
from annotation.services.queue import MAX_SKIP_REASON, Undone, next_task, next_tasks, skip, submit, undo
from annotation.services.relabel import MAX_REASON, pending, send_back
from annotation.services.review import (
    adjudicate,
    answer,
    ask,
    dashboard,
    disagreements,
    export_rows,
    project_agreement,
)

__all__ = [
    "MAX_IMAGE_FILES",
    "MAX_IMPORT_RECORDS",
    "MAX_REASON",
    "MAX_SKIP_REASON",
    "SETTINGS",
    "AnnotationError",
    "Role",
    "add_answer_to_guidelines",
    "add_member",
    "adjudicate",
    "agreement_by_version",
    "answer",
    "ask",
    "can_create_projects",
    "change_role",
    "create_project",
    "current_guideline_version",
    "dashboard",
    "disagreements",
    "edit_guidelines",
    "export_rows",
    "has_labels",
    "count_labelled_images",
    "import_file",
    "import_images",
    "import_labelled_images",
    "import_records",
    "next_task",
    "next_tasks",
    "pending",
    "project_agreement",
    "project_for_user",
    "remove_member",
    "require_role",
    "role_of",
    "send_back",
    "set_role",
    "skip",
    "start_project",
    "submit",
    "undo",
    "Undone",
    "update_settings",
]
