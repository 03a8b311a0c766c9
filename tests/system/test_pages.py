"""Every page of the product in real headless Chromium against gunicorn and MariaDB: each shows the one layout
(top bar with the product, the main navigation, the project switcher and the user menu), axe-core finds no
serious or critical violation on it, and its screenshot is kept: in tests/artifacts/ui/, or in docs/ui/ (shown by
docs/ui.md) when FSML_UI_SCREENSHOTS=docs is set, so a test run leaves the committed pictures as they are.

Also: /api/docs/ renders with every request to another host blocked (Swagger UI is served by the app), and every
page sends a signed-out visitor to the login page.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model
from django.utils import timezone

from annotation.services import ask, create_project, set_role
from annotation.services.guidelines import edit_guidelines
from datastore.models import CrawlJob, DatasetVersion, Evaluation, InferenceJob, ModelVersion, Prediction, Project
from evaluation.evaluate import headline, is_correct
from evaluation.metrics import metrics_for
from evaluation.records import short_label
from tests.axe_support import assert_accessible, describe, violations
from tests.browser_support import annotate_by_api, login, screenshot_on_failure, texts, user
from tests.eval_helpers import registered_version

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "ui" if os.environ.get("FSML_UI_SCREENSHOTS") == "docs" else ROOT / "tests" / "artifacts" / "ui"
LABELS = ["negative", "positive"]
REVIEWS = [
    "The crew was lovely and the seat was roomy.",
    "Lost my bag again; nobody at the desk could help.",
    "Boarding was quick, the flight left on time.",
    "The meal was cold and the screen did not work.",
    "Friendly staff, smooth landing, would fly again.",
    "Two hours late with no explanation at all.",
]


@dataclass
class Seeded:
    project: Project
    task_id: int
    first: Evaluation
    second: Evaluation
    case_id: int
    dataset: str
    job_id: str


def stored_evaluation(project: Project, model: ModelVersion, dataset: DatasetVersion, flips: int) -> Evaluation:
    """An evaluation stored as ``run_evaluation`` stores one, without a model run: the first ``flips`` cases
    wrong."""
    tasks = list(project.tasks.select_related("item").order_by("id"))
    truth = [LABELS[i % 2] for i in range(len(tasks))]
    predicted = [LABELS[(i + (i < flips)) % 2] for i in range(len(tasks))]
    confidences = [0.55 + 0.07 * i for i in range(len(tasks))]
    metrics = metrics_for("text_classification", truth, predicted, LABELS, confidences=confidences)
    score, macro_f1 = headline("text_classification", metrics)
    evaluation = Evaluation.objects.create(
        model_version=model, dataset_version=dataset, split="test", task_type="text_classification", labels=LABELS,
        metrics=metrics, n=len(tasks), score=score, macro_f1=macro_f1,
    )  # fmt: skip
    Prediction.objects.bulk_create(
        Prediction(
            evaluation=evaluation, record_id=f"r{i:05d}", item=task.item, text=task.item.text,
            true_label=short_label("text_classification", t), predicted_label=short_label("text_classification", p),
            true_value=t, predicted_value=p, confidence=c, correct=is_correct("text_classification", t, p),
            scores={t: c, p: 1 - c} if t != p else {t: c},
        )
        for i, (task, t, p, c) in enumerate(zip(tasks, truth, predicted, confidences, strict=True))
    )  # fmt: skip
    return evaluation


def seed(server: str) -> Seeded:
    """A project with tasks, annotations, a question and two guideline versions; a crawl job; two model versions
    with an evaluation each; an inference job."""
    lead, ann, bob = user("lead"), user("ann"), user("bob")
    lead.is_staff = True
    lead.save()
    project = create_project("airline reviews", "text_classification", LABELS, texts(*REVIEWS), overlap=2,
                             members=[ann, bob])  # fmt: skip
    create_project("support tickets", "text_classification", ["bug", "question"], texts("it crashes"), members=[ann])
    set_role(project, lead, "manager")
    edit_guidelines(project, lead, "Label the **passenger's** tone.", note="first")
    edit_guidelines(project, lead, "Label the **passenger's** tone, not the crew's.", note="crew")
    annotate_by_api(server, project.pk, {ann: ["positive", "negative", "positive"], bob: ["positive", "positive"]})
    task_id = project.tasks.order_by("id").values_list("pk", flat=True)[1]
    ask(project, ann, "Is a lost bag negative even if the crew helped?", task_id)
    CrawlJob.objects.filter(source__name="browser").update(
        status="finished", finished_at=timezone.now(), pages_crawled=6, items_stored=6
    )
    dataset = DatasetVersion.objects.create(name="airline-v1", project=project, dvc_md5="-", git_rev="-", path="-")
    weak, strong = (registered_version(v, dataset) for v in (1, 2))
    first = stored_evaluation(project, weak, dataset, flips=3)
    second = stored_evaluation(project, strong, dataset, flips=1)
    job = InferenceJob.objects.create(
        id=uuid.uuid4(), model_version=strong, model_ref="sentiment:2", submitted_by=lead,
        inputs={"text": "Great crew"}, status="succeeded", result={"label": "positive", "confidence": 0.91},
    )  # fmt: skip
    case_id = first.predictions.order_by("id").values_list("pk", flat=True)[0]
    return Seeded(project, task_id, first, second, case_id, dataset.name, str(job.pk))


def pages(s: Seeded) -> list[tuple[str, str, str]]:
    """(screenshot name, path, a selector that is on the page once it is ready)."""
    p, e = s.project.pk, s.first.pk
    return [
        ("home", "/", "[data-testid=projects]"),
        ("new-project", "/manage/new/", "[data-testid=new-project-form]"),
        ("manage-project", f"/manage/{p}/", "[data-testid=settings-form]"),
        ("add-items", f"/manage/{p}/items/", "[data-testid=items-form]"),
        ("data-manager", f"/data/{p}/", "[data-testid=task-table]"),
        ("data-manager-task", f"/data/{p}/tasks/{s.task_id}/", "[data-testid=task-title]"),
        ("team", f"/manage/{p}/team/", "[data-testid=team]"),
        ("questions", f"/manage/{p}/questions/", "article.question"),
        ("guidelines", f"/review/{p}/guidelines/", "[data-testid=agreement-per-version]"),
        ("review", f"/review/{p}/", "[data-testid=review-links], #annotation-app .card"),
        ("crawls", "/crawls/", "main table, main .empty"),
        ("evaluations", "/evaluations/", "[data-testid=leaderboard-row]"),
        ("evaluation", f"/evaluations/{e}/", "[data-testid=evaluation-title]"),
        ("case", f"/evaluations/{e}/cases/{s.case_id}/", "main h1"),
        ("compare", f"/evaluations/compare/?a={e}&b={s.second.pk}", "main h1"),
        ("dataset-lineage", f"/datasets/{s.dataset}/lineage/", "main h1"),
        ("job-lineage", f"/jobs/{s.job_id}/lineage/", "main h1"),
        ("models", "/models/", "main h1"),
        ("api-docs", "/api/docs/", ".swagger-ui .opblock"),
        ("not-found", "/no-such-page/", ".error-page"),
    ]


def assert_layout(page: Any, username: str) -> None:
    """The shared layout: product, main navigation with its entries (Crawls for staff only), project switcher,
    user menu."""
    from playwright.sync_api import expect

    bar = page.get_by_test_id("site-bar")
    expect(bar.locator(".brand")).to_have_text("ffsml")
    nav = page.get_by_role("navigation", name="Main")
    staff = get_user_model().objects.get(username=username).is_staff
    for entry in ("Projects", "Crawls", "Evaluations", "Models", "API docs"):
        link = nav.get_by_role("link", name=entry, exact=True)
        if staff or entry != "Crawls":
            expect(link).to_be_visible()
        else:
            expect(link).to_have_count(0)
    expect(page.get_by_test_id("layout-switcher")).to_be_visible()
    expect(page.get_by_test_id("user-menu")).to_contain_text(username)
    expect(page.get_by_test_id("sign-out")).to_be_visible()


def shoot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def test_every_page_has_the_layout_passes_axe_and_is_photographed(browser: Any, server: str, request: Any) -> None:
    from playwright.sync_api import expect

    s = seed(server)
    get_user_model().objects.filter(username="lead").update(is_staff=True)
    failures: list[str] = []

    signed_out = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    with screenshot_on_failure(signed_out, request):
        signed_out.goto(f"{server}/accounts/login/?next=/")
        expect(signed_out.get_by_role("button", name="Sign in")).to_be_visible()
        expect(signed_out.get_by_test_id("site-bar").locator(".brand")).to_be_visible()
        if found := violations(signed_out):
            failures.append(f"login:\n{describe(found)}")
        shoot(signed_out, "login")

    page = login(browser, server, "lead", "/")
    page.set_viewport_size({"width": 1280, "height": 800})
    with screenshot_on_failure(page, request):
        for name, path, ready in pages(s):
            page.goto(f"{server}{path}")
            page.locator(ready).first.wait_for(state="visible", timeout=15_000)
            assert_layout(page, "lead")
            if found := violations(page):
                failures.append(f"{name} ({path}):\n{describe(found)}")
            shoot(page, name)
        # The switcher: the current project is named, and it opens every project of the user.
        page.goto(f"{server}/manage/{s.project.pk}/")
        switcher = page.get_by_test_id("layout-switcher")
        expect(switcher.locator("summary")).to_contain_text("airline reviews")
        switcher.locator("summary").focus()
        page.keyboard.press("Enter")
        expect(switcher.get_by_role("link", name="support tickets")).to_be_visible()
        shoot(page, "project-switcher")
        page.keyboard.press("Escape")
        expect(switcher.get_by_role("link", name="support tickets")).to_be_hidden()

    annotator = login(browser, server, "ann", f"/annotate/{s.project.pk}/")
    annotator.set_viewport_size({"width": 1280, "height": 800})
    with screenshot_on_failure(annotator, request):
        expect(annotator.get_by_test_id("task-text")).to_be_visible()
        assert_layout(annotator, "ann")
        if found := violations(annotator):
            failures.append(f"label:\n{describe(found)}")
        shoot(annotator, "label")
    assert not failures, "axe-core found serious or critical violations:\n" + "\n".join(failures)


def test_api_docs_render_with_every_other_host_blocked(browser: Any, server: str, request: Any) -> None:
    """Swagger UI's scripts, styles and favicon come from the app (drf-spectacular-sidecar), not a CDN."""
    from playwright.sync_api import expect

    user("reader")
    blocked: list[str] = []
    page = login(browser, server, "reader", "/")

    def only_the_app(route: Any) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_the_app)
    with screenshot_on_failure(page, request):
        page.goto(f"{server}/api/docs/")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("fsml API", timeout=15_000)
        expect(page.locator(".swagger-ui .opblock-summary-path").filter(has_text="/api/jobs/").first).to_be_visible()
        assert_layout(page, "reader")
        assert_accessible(page, "API docs")
        page.goto(f"{server}/api/redoc/")
        expect(page.locator("#redoc-container h1").first).to_contain_text("fsml API", timeout=15_000)
        assert_layout(page, "reader")
        assert_accessible(page, "Redoc")
        shoot(page, "api-redoc")
    assert not blocked, f"requests to other hosts: {blocked}"


def test_signed_out_visitors_are_sent_to_the_login_page(server: str) -> None:
    account = user("lead")
    project = create_project("p", "text_classification", LABELS, texts("a text"), members=[account])
    paths = [
        "/", "/manage/new/", f"/manage/{project.pk}/", f"/manage/{project.pk}/items/", f"/data/{project.pk}/",
        f"/manage/{project.pk}/team/", f"/manage/{project.pk}/questions/", f"/review/{project.pk}/guidelines/",
        f"/review/{project.pk}/", f"/annotate/{project.pk}/", "/crawls/", "/evaluations/", "/evaluations/compare/",
        "/models/", "/api/docs/", "/api/redoc/", f"/jobs/{uuid.uuid4()}/lineage/", "/datasets/v1/lineage/",
    ]  # fmt: skip
    for path in paths:
        res = requests.get(f"{server}{path}", allow_redirects=False, timeout=30)
        assert res.status_code == 302, (path, res.status_code)
        assert res.headers["Location"].startswith(f"/accounts/login/?next={path.split('?')[0]}"), path
    assert requests.get(f"{server}/api/schema/", timeout=30).status_code == 401, "the schema stays an API resource"
