"""Crawl throughput with storage into MySQL against the same crawl with storage disabled, in one run.

    python -m bench.crawl [--posts 3000] [--rounds 2]

Serves the sample site (posts + listing pages) on 127.0.0.1 and crawls it with the real ``site`` spider
in real ``scrapy crawl`` processes, alternating the two modes. Pages per second come from Scrapy's own
``elapsed_time_seconds`` (process start-up excluded). Database: DATABASE_URL, default
mysql://root@127.0.0.1:3306/fsml_bench (created if missing).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time


def setup_database() -> None:
    os.environ.setdefault("DATABASE_URL", "mysql://root@127.0.0.1:3306/fsml_bench")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fsml.settings.local")
    url = os.environ["DATABASE_URL"]
    if url.startswith("mysql://"):
        import dj_database_url
        import MySQLdb

        conf = dj_database_url.parse(url)
        conn = MySQLdb.connect(
            host=conf["HOST"], port=int(conf["PORT"] or 3306), user=conf["USER"], passwd=conf["PASSWORD"] or ""
        )
        conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{conf['NAME']}` CHARACTER SET utf8mb4")
        conn.close()
    from deploy.django_setup import setup

    setup(migrate=True)


def run_once(site_url: str, store: bool, label: str) -> tuple[int, float]:
    """One crawl; returns (pages fetched, seconds of crawling)."""
    from crawler.run import log_file, start_crawl

    settings = {} if store else {"ITEM_PIPELINES": "{}"}
    job, procs = start_crawl("site", site_url, label, options={"extract": "/post/"}, scrapy_settings=settings)
    for proc in procs:
        proc.wait()
    log = log_file(job.pk).read_text()
    pages = int(re.findall(r"'response_received_count': (\d+)", log)[-1])
    seconds = float(re.findall(r"'elapsed_time_seconds': ([\d.]+)", log)[-1])
    return pages, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    setup_database()
    from django.conf import settings

    from deploy.demo.samplesite import SampleSiteServer

    results: dict[str, list[float]] = {"no storage": [], "MySQL storage": []}
    stamp = time.strftime("%H%M%S")
    with SampleSiteServer(limit=args.posts) as site:
        for round_ in range(args.rounds):
            for mode in ("no storage", "MySQL storage"):
                pages, seconds = run_once(site.url, mode == "MySQL storage", f"bench-{stamp}-{round_}")
                results[mode].append(pages / seconds)
                print(f"round {round_ + 1} {mode:14s} {pages} pages in {seconds:.2f} s = {pages / seconds:.0f} pages/s")
    base = statistics.median(results["no storage"])
    stored = statistics.median(results["MySQL storage"])
    print(f"\nDatabase: {settings.DATABASES['default']['ENGINE']} {settings.DATABASES['default']['NAME']}")
    print("| mode | pages/s (median) |\n| --- | --- |")
    print(f"| no storage | {base:.0f} |\n| MySQL storage | {stored:.0f} |")
    print(f"storage / no storage = {stored / base:.3f}; storage costs {100 * (1 - stored / base):.1f}% of throughput")


if __name__ == "__main__":
    main()
