"""20 annotators at once over HTTP against gunicorn and MariaDB: no over-assignment, nothing lost or doubled."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db.models import Count
from rest_framework.authtoken.models import Token

from annotation.services import create_project
from datastore.models import Annotation, Assignment, Item, Task
from deploy.processes import Service, free_port, wait_http, web_command
from tests.helpers import stored_items

CLIENTS, CYCLES = 20, 2000  # 20 annotators, 2,000 next-task/submit cycles


@pytest.mark.slow
@pytest.mark.parametrize("OVERLAP", [2, 1])
def test_parallel_annotators_never_over_assign_or_lose_work(live_env, tmp_path: Path, OVERLAP: int) -> None:  # noqa: N803
    TASKS = CYCLES // OVERLAP  # noqa: N806 -- the spec's names
    stored_items(TASKS, "concurrency text {i}")
    users = [get_user_model().objects.create(username=f"annotator{i:02d}") for i in range(CLIENTS)]
    project = create_project(
        "concurrency", "text_classification", ["a", "b"], Item.objects.order_by("id"), overlap=OVERLAP, members=users
    )
    tokens = [Token.objects.create(user=u).key for u in users]
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def annotate(token: str) -> tuple[list[int], list[str]]:
        done: list[int] = []
        errors: list[str] = []
        with requests.Session() as http:
            http.headers["Authorization"] = f"Token {token}"
            while True:
                res = http.post(f"{base}/api/projects/{project.pk}/next/", timeout=60)
                if res.status_code == 204:
                    return done, errors
                if res.status_code != 200:
                    errors.append(f"next {res.status_code} {res.text[:200]}")
                    return done, errors
                task_id = res.json()["id"]
                sub = http.post(f"{base}/api/tasks/{task_id}/annotations/", json={"value": "a"}, timeout=60)
                if sub.status_code != 201:
                    errors.append(f"submit {task_id} {sub.status_code} {sub.text[:200]}")
                done.append(task_id)

    with Service("web", web_command("127.0.0.1", port, workers=3), tmp_path / "web.log") as web:
        wait_http(web, f"{base}/readyz")
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(annotate, tokens))

    errors = [e for _, errs in results for e in errs]
    assert errors == []
    for done, _ in results:
        assert len(done) == len(set(done))  # nobody got the same task twice
    assert sum(len(done) for done, _ in results) == TASKS * OVERLAP
    assert Annotation.objects.filter(task__project=project).count() == TASKS * OVERLAP
    per_task = Counter(
        dict(
            Assignment.objects.filter(task__project=project)
            .values_list("task")
            .annotate(n=Count("id"))
            .values_list("task", "n")
        )
    )
    assert set(per_task.values()) == {OVERLAP}  # no task was ever handed to a third annotator
    assert set(Task.objects.filter(project=project).values_list("status", "annotation_count")) == {("done", OVERLAP)}
    assert len({u for done, _ in results for u in done}) == TASKS
