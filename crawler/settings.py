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
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 16.0
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 5 * 1024 * 1024  # pages above this are dropped with a logged reason
DOWNLOAD_WARNSIZE = 1024 * 1024
RETRY_TIMES = 2
REDIRECT_MAX_TIMES = 5
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"  # the crawler process's own logging is kept when it sets up Django (crawler.pipelines)
LOG_FORMATTER = "crawler.logformatter.UrlLogFormatter"  # items logged by URL, never their whole text

ITEM_PIPELINES = {
    "crawler.pipelines.SizedImagesPipeline": 100,  # disabled (NotConfigured) unless IMAGES_STORE is set
    "crawler.pipelines.DatabasePipeline": 300,
}
IMAGES_STORE = ""  # set per run by crawler.run (FSML_HOME/files/images); empty disables images
IMAGES_MAX_BYTES = 2 * 1024 * 1024
IMAGES_MIN_WIDTH = 8
IMAGES_MIN_HEIGHT = 8
STORE_BATCH_SIZE = 200  # items per database transaction

# JobRecorder opens and closes the job's row with or without the database pipeline (ITEM_PIPELINES={}).
EXTENSIONS = {
    "crawler.extensions.JobRecorder": 490,
    "crawler.extensions.LiveStats": 500,
    "crawler.extensions.SharedFrontierIdle": 510,
}
FSML_STATS_INTERVAL = 5.0
# Both before robots.txt (100): no robots.txt is fetched for a page that is not requested.
DOWNLOADER_MIDDLEWARES = {"crawler.middlewares.SkipStoredPages": 50, "crawler.middlewares.StayOnOrigin": 60}
DUPEFILTER_CLASS = "crawler.dupefilters.MemoryDupeFilter"

# The plain epoll reactor: with the asyncio one, Django refuses synchronous ORM calls from the pipeline.
TWISTED_REACTOR = "twisted.internet.epollreactor.EPollReactor"
FEED_EXPORT_ENCODING = "utf-8"
