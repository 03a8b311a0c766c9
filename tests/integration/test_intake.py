"""Crawled items become tasks: every filter, preview, re-adding, refusals, feeds (real MariaDB)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from annotation.intake import services as intake
from annotation.services import AnnotationError, set_role, start_project
from datastore import services as store
from datastore.models import CrawlJob, Item, Project, SourceFeed, Task
from datastore.selection import ItemFilter, SelectionError, preview, sample_ids, select

DAY = dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC)


def page(n: int, text: str = "", lang: str = "en", days: int = 0, path: str = "post") -> dict[str, Any]:
    url = f"http://site.test/{path}/{n}"
    return {
        "url": url,
        "canonical_url": url,
        "title": f"page {n}",
        "text": text or f"text number {n} " * (n + 1),
        "metadata": {"language": lang},
        "fetched_at": DAY + dt.timedelta(days=days),
    }


def image(n: int, on_page: int) -> dict[str, Any]:
    url = f"http://site.test/img/{n}.png"
    return {
        "url": url,
        "canonical_url": url,
        "image": f"/store/{n}.png",
        "content_hash": f"{n:064x}",
        "metadata": {"page": f"http://site.test/post/{on_page}"},
        "fetched_at": DAY,
    }


def crawl(source: str, rows: list[dict[str, Any]]) -> CrawlJob:
    job = store.start_crawl_job(store.get_or_create_source(source, "http://site.test/"), "site", ["http://site.test/"])
    result = store.store_items(job, rows)
    assert not result.failed
    return job


@pytest.fixture
def manager(db) -> Any:
    return get_user_model().objects.create(username="boss", is_staff=True)


@pytest.fixture
def site(db) -> dict[str, CrawlJob]:
    """Two sources; site-a has two crawl jobs, English and German pages, and two images on page 1."""
    first = crawl("site-a", [page(1), page(2, lang="de", days=10), page(3, days=20), image(1, 1), image(2, 1)])
    second = crawl("site-a", [page(4, path="blog"), page(5, path="blog", lang="de", days=30)])
    other = crawl("site-b", [page(6), page(7)])
    return {"first": first, "second": second, "other": other}


def titles(spec: ItemFilter) -> list[str]:
    return sorted(select(spec).values_list("title", flat=True))


def test_every_filter_selects_what_it_says(site, manager) -> None:
    assert titles(ItemFilter(sources=["site-b"])) == ["page 6", "page 7"]
    assert len(titles(ItemFilter(sources=[str(site["other"].source_id)]))) == 2  # an id works as a name
    assert titles(ItemFilter(crawl_jobs=[site["second"].pk])) == ["page 4", "page 5"]
    assert titles(ItemFilter(url_pattern="/blog/")) == ["page 4", "page 5"]
    assert titles(ItemFilter(url_pattern=r"/post/[12]$")) == ["page 1", "page 2"]
    assert titles(ItemFilter(fetched_after="2024-03-11", fetched_before="2024-03-21")) == ["page 2", "page 3"]
    assert titles(ItemFilter(fetched_before="2024-03-01", kind="text")) == ["page 1", "page 4", "page 6", "page 7"]
    assert titles(ItemFilter(languages=["de"])) == ["page 2", "page 5"]
    lengths = {t: len(Item.objects.get(title=t).text) for t in ("page 1", "page 2", "page 3")}
    assert titles(ItemFilter(sources=["site-a"], min_chars=lengths["page 2"], max_chars=lengths["page 3"])) == [
        "page 2",
        "page 3",
    ]
    assert titles(ItemFilter(kind="image")) == ["", ""]
    with_images = select(ItemFilter(has_images=True))
    assert sorted(with_images.values_list("kind", flat=True)) == ["image", "image", "text"]
    assert with_images.get(kind="text").title == "page 1"  # the page the two images were on
    assert "page 1" not in titles(ItemFilter(has_images=False)) and len(titles(ItemFilter(has_images=False))) == 6
    project, _ = intake.create_project_from_crawl(
        manager, "first", "text_classification", ["a", "b"], ItemFilter(sources=["site-b"])
    )
    assert titles(ItemFilter(kind="text", not_in_project="first")) == [f"page {n}" for n in range(1, 6)]
    assert titles(ItemFilter(kind="text", not_in_project=str(project.pk), sources=["site-b"])) == []


def test_a_sample_is_repeatable_for_a_seed_and_a_larger_one_holds_it(site) -> None:
    texts = ItemFilter(kind="text")
    three = titles(ItemFilter(kind="text", sample=3, seed=7))
    assert len(three) == 3 and titles(ItemFilter(kind="text", sample=3, seed=7)) == three
    assert set(three) <= set(titles(ItemFilter(kind="text", sample=5, seed=7)))
    seeds = {tuple(titles(ItemFilter(kind="text", sample=3, seed=s))) for s in range(8)}
    assert len(seeds) > 1, "the seed chooses the sample"
    assert len(sample_ids(select(texts), 100, 1)) == 7  # a sample larger than the matches takes them all


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"url_pattern": "post/(["}, "url_pattern"),
        ({"fetched_after": "March"}, "fetched_after"),
        ({"fetched_after": "2024-03-05", "fetched_before": "2024-03-01"}, "fetched_after"),
        ({"min_chars": 10, "max_chars": 5}, "min_chars"),
        ({"kind": "video"}, "kind"),
        ({"sample": 0}, "sample"),
        ({"colour": "red"}, "colour"),
        ({"has_images": "maybe"}, "has_images"),
    ],
)
def test_a_bad_filter_is_refused_naming_its_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(SelectionError) as caught:
        ItemFilter.from_dict(data)
    assert caught.value.field == field


def test_unknown_sources_jobs_and_projects_are_named(db) -> None:
    for spec, said in (
        (ItemFilter(sources=["nowhere"]), "no source named 'nowhere'"),
        (ItemFilter(crawl_jobs=[987654]), "no crawl job 987654"),
        (ItemFilter(not_in_project="ghost"), "no project named 'ghost'"),
    ):
        with pytest.raises(SelectionError, match=said):
            select(spec)


def test_preview_counts_and_writes_nothing_then_an_add_skips_what_is_there(site, manager) -> None:
    project = start_project(manager, "news", "text_classification", ["a", "b"])
    spec = ItemFilter(sources=["site-a"], kind="text")
    counts = intake.preview(project, manager, spec)
    assert (counts.matching, counts.in_project, counts.wrong_kind, counts.new) == (5, 0, 0, 5)
    dry = intake.add_items(project, manager, spec, dry_run=True)
    assert (dry.created, dry.dry_run) == (5, True)
    assert Task.objects.filter(project=project).count() == 0, "a preview and a dry run write nothing"

    first = intake.add_items(project, manager, ItemFilter(url_pattern="/blog/", min_chars=1, languages=["en", "de"]))
    assert (first.matching, first.created, first.skipped) == (2, 2, 0)
    again = intake.add_items(project, manager, spec)
    assert (again.matching, again.created, again.skipped) == (5, 3, 2)
    assert "3 added, 2 already in the project" in again.message()
    assert Task.objects.filter(project=project).count() == 5
    assert preview(spec, project).in_project == 5 and preview(spec, project).new == 0


def test_a_filter_that_matches_nothing_says_so_and_writes_nothing(site, manager) -> None:
    project = start_project(manager, "empty", "text_classification", ["a", "b"])
    with pytest.raises(AnnotationError, match=r"no item matches the filter \(url_pattern=/nothing/\)"):
        intake.add_items(project, manager, ItemFilter(url_pattern="/nothing/"))
    with pytest.raises(AnnotationError, match="no item matches"):
        intake.create_project_from_crawl(manager, "never", "text_classification", ["a"], ItemFilter(languages=["fr"]))
    assert not Task.objects.exists()
    assert not Project.objects.filter(name="never").exists(), "the project is created with its items or not at all"


def test_items_of_the_wrong_kind_are_refused_with_counts(site, manager) -> None:
    text = start_project(manager, "texts", "text_classification", ["a", "b"])
    with pytest.raises(AnnotationError) as caught:
        intake.add_items(text, manager, ItemFilter(sources=["site-a"]))
    reason = caught.value.reason
    assert "2 of the 7 matching items are not text items (2 image, 5 text)" in reason and "kind=text" in reason
    images = start_project(manager, "pictures", "image_classification", ["cat", "dog"])
    with pytest.raises(AnnotationError, match="5 of the 7 matching items are not image items"):
        intake.add_items(images, manager, ItemFilter(sources=["site-a"]))
    assert not Task.objects.exists()
    assert intake.add_items(images, manager, ItemFilter(sources=["site-a"], kind="image")).created == 2


def test_only_managers_add_items(site, manager) -> None:
    project = start_project(manager, "guarded", "text_classification", ["a", "b"])
    annotator = get_user_model().objects.create(username="ann")
    set_role(project, annotator, "annotator")
    for call in (
        lambda: intake.add_items(project, annotator, ItemFilter(kind="text")),
        lambda: intake.preview(project, annotator, ItemFilter(kind="text")),
        lambda: intake.follow(project, annotator, "site-a", ItemFilter()),
    ):
        with pytest.raises(AnnotationError) as caught:
            call()
        assert caught.value.status == 403
    assert not Task.objects.exists() and not SourceFeed.objects.exists()


def test_a_feed_adds_items_later_crawls_store_that_pass_its_filter(site, manager) -> None:
    project = start_project(manager, "follower", "text_classification", ["a", "b"])
    feed = intake.follow(project, manager, "site-a", ItemFilter(languages=["en"], url_pattern="/post/"))
    assert feed.filters == {"languages": ["en"], "url_pattern": "/post/", "kind": "text"}
    assert not Task.objects.filter(project=project).exists(), "following takes only items stored from now on"

    crawl("site-a", [page(10), page(11, lang="de"), page(12, path="blog"), image(3, 10)])
    crawl("site-b", [page(13)])  # another source: not followed
    added = sorted(Task.objects.filter(project=project).values_list("item__title", flat=True))
    assert added == ["page 10"]
    feed.refresh_from_db()
    assert feed.items_added == 1

    intake.unfollow(project, manager, "site-a")
    crawl("site-a", [page(14)])
    assert Task.objects.filter(project=project).count() == 1, "an inactive feed adds nothing"
    with pytest.raises(AnnotationError, match="does not follow"):
        intake.unfollow(project, manager, "site-a")


def test_a_feed_refuses_samples_and_the_wrong_kind(site, manager) -> None:
    project = start_project(manager, "feedy", "text_classification", ["a", "b"])
    with pytest.raises(AnnotationError, match="cannot sample"):
        intake.follow(project, manager, "site-a", ItemFilter(sample=3))
    with pytest.raises(AnnotationError, match="takes text items, not image"):
        intake.follow(project, manager, "site-a", ItemFilter(kind="image"))
    with pytest.raises(AnnotationError, match="no source named"):
        intake.follow(project, manager, "nowhere", ItemFilter())
    assert not SourceFeed.objects.exists()
