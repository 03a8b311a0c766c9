"""The OpenAPI schema says what the API does: schemathesis calls every operation of the schema drf-spectacular
serves, with data the schema allows and data it refuses, and checks each answer against the schema (no 5xx, a
documented status, content type and body; refused data refused).

The calls go through the WSGI application in this process, against the test database, with a staff user's
token (staff may call every operation) and a small world to find: a project with tasks and a question, a model in
the registry with an alias, and a job. A path parameter that names one of these is set to it for half of the
examples, so both the found and the not-found answers are checked.
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core import signals
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from annotation import services as annotation
from datastore.models import InferenceJob
from datastore.services import register_model_version, registry
from tests.annotation_helpers import make_project, user

MODEL = "schema-model"
SYNC_WAIT = 0.05  # seconds a generated sync submit may wait: no worker runs here, so every wait is the full timeout


def schema_document() -> dict[str, Any]:
    """The schema ``/api/schema/`` serves."""
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture
def in_test_transaction(db: None) -> Iterator[None]:
    """Requests that leave the test's connection open, as Django's test client does: the WSGI handler's
    ``close_old_connections`` would close it inside the test's transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(in_test_transaction: None) -> dict[str, Any]:
    """The records the operations name, and a staff token that may call them all."""
    staff = get_user_model().objects.create(username="schema-staff", is_staff=True, is_superuser=True)
    project = make_project(n=4)
    annotation.set_role(project, staff, "manager")
    task = project.tasks.order_by("id").first()
    assert task is not None
    question = annotation.ask(project, user("alice"), "which label for sarcasm?", task.pk)
    model = register_model_version(MODEL, "text_classification", "/nonexistent/model.fsml", "0" * 64, {}, None)
    registry.promote(MODEL, model.version, "production", staff)
    job = InferenceJob.objects.create(
        model_version=model, model_ref=MODEL, submitted_by=staff, inputs={"text": "hello"}
    )
    member = project.memberships.order_by("id").first()
    assert member is not None
    return {
        "token": Token.objects.create(user=staff).key,
        "ids": {
            "project_id": project.pk,
            "task_id": task.pk,
            "item_id": task.item_id,
            "question_id": question.pk,
            "member_id": member.pk,
            "job_id": str(job.pk),
            "name": MODEL,
            "alias": "production",
        },
    }


def api_schema() -> Any:
    """The schema, calling the WSGI application in this process."""
    from fsml.wsgi import application  # made once pytest-django has picked the test settings

    loaded = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT))
    loaded.app = application
    return loaded


DOCUMENT = schema_document()
schema = api_schema()


# One pytest test per operation, each drawing schema-valid and schema-violating requests. (schemathesis's own
# ``schema.parametrize()`` gives its tests one node id under pytest 9, so pytest-xdist, as .ci/test.sh runs it,
# would run one operation of them.)
OPERATIONS = sorted(result.ok().label for result in schema.get_all_operations())
EXAMPLES = settings(
    max_examples=50,  # about a minute for the 49 operations on two cores
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=True,  # the same examples on every run: a failure here is reproducible
    database=None,
)


@pytest.mark.parametrize("label", OPERATIONS)
def test_every_operation_does_what_the_schema_says(label: str, world: dict[str, Any]) -> None:
    method, path = label.split(" ", 1)
    operation = schema[path][method]
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @EXAMPLES
    @given(case=cases)
    def call(case: Any) -> None:
        check(case, world)

    call()


def check(case: Any, world: dict[str, Any]) -> None:
    """Call the operation with ``case`` (its path parameters set to the world's records for about half of the
    schema-valid cases) and check the answer with every check."""
    ids = world["ids"]
    positive = case.meta is None or case.meta.generation.mode.is_positive  # a negative case keeps what it broke
    for name, value in list((case.path_parameters or {}).items()):
        if positive and name in ids and _chosen(value):
            case.path_parameters[name] = ids[name]
    if case.path == "/api/jobs/sync/" and isinstance(case.body, dict):
        timeout = case.body.get("timeout")
        if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and 0 <= timeout <= 30:
            case.body["timeout"] = min(timeout, SYNC_WAIT)
    case.call_and_validate(
        headers={"Authorization": f"Token {world['token']}"},
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
        additional_checks=[accepts_what_the_schema_allows, rejects_what_the_schema_refuses],
    )


# Operations whose input is checked against stored records or file contents no schema can hold: a project's
# labels (an answer, an adjudication, a bulk action, the label filter of the task list) or task type (the export
# formats that fit it), the sources an item filter names (a new project's items, added items, a feed), the named
# model's task type (a job's inputs), the records in an uploaded file.
CHECKED_AGAINST_RECORDS = {
    "GET /api/projects/{project_id}/export/",
    "GET /api/projects/{project_id}/tasks/",
    "POST /api/projects/",
    "POST /api/projects/{project_id}/items/",
    "POST /api/projects/{project_id}/feeds/",
    "DELETE /api/projects/{project_id}/feeds/",
    "POST /api/projects/{project_id}/import/",
    "POST /api/tasks/{task_id}/annotations/",
    "POST /api/tasks/{task_id}/adjudicate/",
    "POST /api/projects/{project_id}/tasks/bulk/",
    "POST /api/jobs/",
    "POST /api/jobs/batch/",
    "POST /api/jobs/sync/",
}


def accepts_what_the_schema_allows(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schemathesis's ``positive_data_acceptance``, except that an operation of ``CHECKED_AGAINST_RECORDS`` may
    refuse a schema-valid body with a 400 that gives its reason as ``detail``: a domain refusal (this label is
    not one of the project's), never a field the serializer refuses against the schema."""
    if case.operation.label in CHECKED_AGAINST_RECORDS and response.status_code == 400:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("detail"), str):
            return None
    return positive_data_acceptance(ctx, response, case)


def _chosen(value: Any) -> bool:
    """Whether a generated path value is replaced by the record's: about half of them."""
    return zlib.crc32(str(value).encode()) % 2 == 0


def rejects_what_the_schema_refuses(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schemathesis's ``negative_data_rejection``, except where all that is wrong with an accepted JSON body is a
    number sent for a text field: DRF's CharField takes a number as its decimal text (5 as "5"), by design."""
    if response.status_code < 400 and isinstance(case.body, dict) and _valid_with_numbers_as_text(case):
        return None
    return negative_data_rejection(ctx, response, case)


def _valid_with_numbers_as_text(case: Any) -> bool:
    """Whether the body is valid once some of its numbers (or a list's) are sent as their text."""
    operation = DOCUMENT["paths"].get(case.path, {}).get(case.method.lower(), {})
    media = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if media is None:
        return False
    validator = jsonschema.Draft4Validator({**media["schema"], "components": DOCUMENT["components"]})
    body = dict(case.body)
    for key, value in case.body.items():
        as_text = body | {key: [_text(v) for v in value] if isinstance(value, list) else _text(value)}
        if len(list(validator.iter_errors(as_text))) < len(list(validator.iter_errors(body))):
            body = as_text
    return body != case.body and validator.is_valid(body)


def _text(value: Any) -> Any:
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
