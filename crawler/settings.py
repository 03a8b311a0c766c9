"""Scrapy settings for fsml's crawler. Polite by default: robots.txt, AutoThrottle, a clear user agent."""

from __future__ import annotations

BOT_NAME = "fsml"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

USER_AGENT = "fsml-crawler/0.1 (+https://github.com/fsml/fsml; data collection for ML research)"
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 32
CONCURRENT_REQUESTS_PER_DOMAIN = 16
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 16.0
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 10 * 1024 * 1024
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
RETRY_TIMES = 2
REDIRECT_MAX_TIMES = 5
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"

ITEM_PIPELINES = {"crawler.pipelines.DatabasePipeline": 300}
STORE_BATCH_SIZE = 200  # items per database transaction

REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
# The plain epoll reactor: with the asyncio one, Django refuses synchronous ORM calls from the pipeline.
TWISTED_REACTOR = "twisted.internet.epollreactor.EPollReactor"
FEED_EXPORT_ENCODING = "utf-8"
