"""``fsml crawl`` (a Scrapy crawl into the database, with a progress bar) and ``fsml crawls`` (recent crawl jobs)."""

from __future__ import annotations

from typing import Annotated

import typer

from crawler.errors import CrawlError
from crawler.middlewares import site_name
from deploy.cli_support import JsonOption
from deploy.cli_support import fail as _fail
from deploy.cli_support import start_django as _django
from deploy.console import print_json, print_table, progress, say


def crawl(
    spider: Annotated[str, typer.Argument(help="site (follow links from URL) or sitemap (URL is a sitemap).")],
    url: Annotated[str, typer.Argument(help="Start URL(s), comma-separated, or the sitemap URL.")],
    source: Annotated[str, typer.Option(help="Source name to record items under.")] = "",
    licence: Annotated[str, typer.Option(help="Licence or terms note for the source.")] = "",
    depth: Annotated[int, typer.Option(help="Link depth limit (0 = none).")] = 0,
    allow: Annotated[str, typer.Option(help="Regex of URLs to follow.")] = "",
    deny: Annotated[str, typer.Option(help="Regex of URLs not to follow.")] = "",
    extract: Annotated[str, typer.Option(help="Regex of item page URLs (default: every page).")] = "",
    images: Annotated[bool, typer.Option(help="Download images in the main content.")] = False,
    resume: Annotated[int | None, typer.Option(help="Continue an interrupted crawl job by id.")] = None,
) -> None:
    """Crawl with Scrapy into the database (resumable; one job directory per crawl job)."""
    _django()
    from crawler.run import crawl as run_crawl  # local: needs Django, set up just above

    options = {"extract": extract, "images": "1" if images else ""}
    if spider == "site":
        options.update(depth=str(depth), allow=allow, deny=deny)
    with progress() as bar:
        task = bar.add_task("crawling: items stored", total=None)
        try:
            job = run_crawl(
                spider,
                url,
                source or site_name(url),
                licence_note=licence,
                options={k: v for k, v in options.items() if v},
                resume=resume,
                on_progress=lambda n: bar.update(task, completed=n),
            )
        except CrawlError as exc:
            _fail(str(exc))
    from datastore.services.crawls import describe_skips  # local: needs Django, set up above

    say(
        f"crawl job {job.pk}: {job.status}, {job.pages_crawled} pages, {job.items_stored} new, "
        f"{job.items_updated} updated, {job.items_unchanged} unchanged, {job.items_duplicate} duplicates, "
        f"{job.items_failed} invalid, {job.errors} errors; skipped: {describe_skips(job.stats)}"
    )


def crawls(
    limit: Annotated[int, typer.Option(help="Jobs to list, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The recent crawl jobs as a table: id, source, spider, status, pages, new and updated items, errors, start
    time, and why a failed one failed. --json prints a list of objects, skip reasons counted."""
    _django()
    # local: needs Django, set up just above
    from datastore.models import CrawlJob
    from datastore.services.crawls import describe_skips, skip_counts

    jobs = CrawlJob.objects.select_related("source").order_by("-started_at")[:limit]
    rows = [
        {
            "id": job.pk,
            "source": job.source.name,
            "spider": job.spider,
            "status": job.status,
            "pages": job.pages_crawled,
            "new": job.items_stored,
            "updated": job.items_updated,
            "unchanged": job.items_unchanged,
            "duplicates": job.items_duplicate,
            "invalid": job.items_failed,
            "errors": job.errors,
            "started_at": job.started_at.isoformat(),
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            "reason": job.stats.get("reason", ""),
            "skipped": {reason: n for reason, n, _ in skip_counts(job.stats)},
            "skipped_text": describe_skips(job.stats),
        }
        for job in jobs
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        say("no crawl jobs yet (fsml crawl site URL --source NAME)")
        return
    columns = ["id", "source", "spider", "status", "pages", "new", "updated", "errors"]
    print_table(
        [*columns, "started (UTC)", "reason or skipped"],
        [[*(r[c] for c in columns), r["started_at"][:16].replace("T", " "), r["reason"] or r["skipped_text"]]
         for r in rows],
        numeric=("id", "pages", "new", "updated", "errors"),
    )  # fmt: skip
