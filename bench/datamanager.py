"""Server-side time of the data manager's task list over a 100,000-task project on MariaDB.

    python -m bench.datamanager [--tasks 100000] [--rounds 30] [--rebuild]

Builds (once; ``--rebuild`` drops it first) a project of ``--tasks`` stored items from two sources, with
bulk_create: 60% of the tasks labelled by two of eight annotators (one pair in six disagrees), 10% by one, a
model's suggestion with its uncertainty on half, 3% adjudicated, questions on 1%, skips on 2%, live holds on
1%, relabel requests on 0.5%. Then each request is timed ``--rounds`` times after one warm-up, twice: the
service call (``list_tasks``: the count, the page's ids, its rows and annotations) and the REST API request
through Django's test client in this process (routing, authentication, the role check, the service, JSON
rendering; no network), with DEBUG off. The table gives p50/p95 in milliseconds and the SQL queries of one
API request. The target: p95 under 200 ms server-side.

Database: DATABASE_URL, default mysql://root@127.0.0.1:3306/fsml_bench_dm (created if missing). The project is
kept between runs, so a second run times at once.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import statistics
import time
from datetime import timedelta
from typing import Any

NAME = "bench-datamanager"
WORDS = re.findall(
    r"\w+",
    "the flight was late and the crew kind seat food bag lost found refund delay gate staff clean noisy cheap "
    "window aisle landing smooth rough coffee meal screen movie wifi boarding queue pilot announcement ticket",
)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def build(n: int) -> Any:
    """The project of ``n`` tasks, with annotations, suggestions, holds, skips, questions and relabel requests."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from datastore.models import (
        Annotation,
        Assignment,
        CrawlJob,
        Item,
        Project,
        ProjectMember,
        Question,
        RelabelRequest,
        Source,
        Task,
        TaskLabel,
    )

    began, rng, now = time.perf_counter(), random.Random(7), timezone.now()
    users = [get_user_model().objects.get_or_create(username=f"dm-annotator-{i}")[0] for i in range(8)]
    manager = get_user_model().objects.get_or_create(username="dm-manager")[0]
    with transaction.atomic():
        project = Project.objects.create(
            name=NAME, task_type="text_classification", labels=["neg", "neu", "pos"], overlap=2
        )
        ProjectMember.objects.create(project=project, user=manager, role="manager")
        ProjectMember.objects.bulk_create(ProjectMember(project=project, user=u, role="annotator") for u in users)
        sources = [Source.objects.get_or_create(name=f"{NAME}-{s}", base_url=f"http://{s}.bench/")[0] for s in "ab"]
        jobs = [CrawlJob.objects.create(source=s, spider="site") for s in sources]
    items = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 40)))
        source = i % 2
        url = f"http://{'ab'[source]}.bench/{NAME}/{i}"
        items.append(
            Item(
                source=sources[source],
                crawl_job=jobs[source],
                url=url,
                canonical_url=url,
                url_hash=hashlib.sha256(url.encode()).hexdigest(),
                content_hash=hashlib.sha256(f"{i} {text}".encode()).hexdigest(),
                title=f"review {i}",
                text=text,
                fetched_at=now,
            )
        )
    Item.objects.bulk_create(items, batch_size=2000)
    item_ids = list(Item.objects.filter(source__in=sources).order_by("id").values_list("id", flat=True))
    tasks, plans = [], []
    for item_id in item_ids:
        labelled, uncertain = rng.random(), rng.random() < 0.5
        count = 2 if labelled < 0.6 else 1 if labelled < 0.7 else 0
        first = rng.choice(project.labels)
        values = [first, first if rng.random() > 1 / 6 else rng.choice([v for v in project.labels if v != first])]
        plans.append((rng.sample(users, 2), values[:count]))
        tasks.append(
            Task(
                project=project,
                item_id=item_id,
                status="done" if count == 2 else "open",
                annotation_count=count,
                agreement=(1.0 if len(set(values[:count])) == 1 else 0.5) if count else None,
                prediction=rng.choice(project.labels) if uncertain else None,
                uncertainty=round(rng.random() * 0.66, 4) if uncertain else None,
            )
        )
    Task.objects.bulk_create(tasks, batch_size=2000)
    rows = list(Task.objects.filter(project=project).order_by("id").values_list("id", "annotation_count"))
    annotations, assignments, adjudicated = [], [], []
    for (task_id, count), (pair, values) in zip(rows, plans, strict=True):
        for user, value in zip(pair, values, strict=False):
            annotations.append(Annotation(task_id=task_id, annotator=user, value=value, lead_time=rng.uniform(2, 30)))
            assignments.append(Assignment(task_id=task_id, annotator=user, status="submitted", expires_at=now))
        if count == 1 and rng.random() < 0.1:
            assignments.append(
                Assignment(task_id=task_id, annotator=pair[1], status="active", expires_at=now + timedelta(hours=1))
            )
        elif count < 2 and rng.random() < 0.2:
            assignments.append(
                Assignment(task_id=task_id, annotator=pair[1], status="skipped", expires_at=now, skip_reason="unclear")
            )
        if count == 2 and rng.random() < 0.05:
            adjudicated.append(task_id)
    Annotation.objects.bulk_create(annotations, batch_size=5000)
    Assignment.objects.bulk_create(assignments, batch_size=5000)
    Task.objects.filter(pk__in=adjudicated).update(final_value="pos", adjudicated_by=manager, adjudicated_at=now)
    TaskLabel.refresh([t for t, _ in rows])  # what the label filter reads, as the services keep it
    asked = rng.sample([t for t, _ in rows], len(rows) // 100)
    Question.objects.bulk_create(
        Question(project=project, task_id=t, asked_by=users[0], text="sarcasm?") for t in asked
    )
    open_ids = [t for t, c in rows if c == 0]
    RelabelRequest.objects.bulk_create(
        RelabelRequest(task_id=t, requested_by=manager, reason="label error", previous={})
        for t in rng.sample(open_ids, len(rows) // 200)
    )
    print(
        f"built {len(rows):,} tasks, {len(annotations):,} annotations, {len(assignments):,} assignments in "
        f"{time.perf_counter() - began:.0f} s"
    )
    return project


def drop() -> None:
    from django.db.models import Q

    from datastore.models import Item, Project, RelabelRequest, Source

    project = Project.objects.filter(name=NAME).first()
    if project is not None:
        RelabelRequest.objects.filter(task__project=project).delete()
        project.delete()  # cascades: tasks, annotations, assignments, questions, members
    Item.objects.filter(source__name__startswith=NAME).delete()
    Source.objects.filter(Q(name__startswith=NAME)).delete()


def requests_of(project: Any) -> dict[str, dict[str, str]]:
    count = project.tasks.count()
    deep = max(1, count // 50 - 1)
    return {
        "unfiltered, page 1": {},
        f"unfiltered, page {deep:,} (deep)": {"page": str(deep)},
        "status = done": {"status": "done"},
        "status = held": {"status": "held"},
        "label = neg": {"label": "neg"},
        "annotator = dm-annotator-3": {"annotator": "dm-annotator-3"},
        "disagreement": {"disagreement": "yes"},
        "least agreement first": {"order": "agreement"},
        "has question": {"has_question": "yes"},
        "source": {"source": f"{NAME}-b"},
        "text search 'refund' (half the tasks: counted to 10,000)": {"q": "refund"},
        "text search 'refund delay gate' (a few tasks)": {"q": "refund delay gate"},
        "text search 'xylophone' (no task: a full scan)": {"q": "xylophone"},
        "sort by uncertainty (most first)": {"order": "-uncertainty"},
        "sort by confidence, page 100": {"order": "confidence", "page": "100"},
        "disagreement + annotator, by annotation count": {
            "disagreement": "yes",
            "annotator": "dm-annotator-3",
            "order": "-annotations",
        },
    }


def timed(call: Any, rounds: int) -> list[float]:
    call()  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - start))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", "mysql://root@127.0.0.1:3306/fsml_bench_dm")
    from bench.crawl import setup_database

    setup_database()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.test import APIClient

    from annotation.datamanager.services import TaskFilter, list_tasks
    from datastore.models import Project

    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["*"]
    if args.rebuild:
        drop()
    project = Project.objects.filter(name=NAME).first()
    if project is None or project.tasks.count() != args.tasks:
        drop()
        project = build(args.tasks)
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(username="dm-manager"))
    url = f"/api/projects/{project.pk}/tasks/"
    print(f"\n{project.tasks.count():,} tasks; {args.rounds} requests each after a warm-up; {connection.vendor}")
    print("| request | matching | service p50 ms | service p95 ms | API p50 ms | API p95 ms | SQL queries |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    worst = 0.0
    for label, params in requests_of(project).items():
        flt = TaskFilter.from_query(params)
        service = timed(lambda f=flt, p=params: list_tasks(project, f, p.get("page")), args.rounds)  # type: ignore[misc]
        response = client.get(url, params)
        assert response.status_code == 200, response.content[:300]
        queries: list[str] = []

        def count(execute: Any, sql: str, *rest: Any, seen: list[str] = queries) -> Any:
            seen.append(sql)
            return execute(sql, *rest)

        with connection.execute_wrapper(count):
            client.get(url, params)
        api = timed(lambda p=params: client.get(url, p), args.rounds)  # type: ignore[misc]
        worst = max(worst, percentile(api, 95))
        print(
            f"| {label} | {response.json()['count']:,}{'' if response.json()['count_is_exact'] else '+'} | "
            f"{statistics.median(service):.1f} | "
            f"{percentile(service, 95):.1f} | {statistics.median(api):.1f} | {percentile(api, 95):.1f} | "
            f"{len(queries)} |"
        )
    print(f"\nworst API p95: {worst:.1f} ms (target: under 200 ms)")


if __name__ == "__main__":
    main()
