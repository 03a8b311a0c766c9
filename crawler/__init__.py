"""The Scrapy project that brings raw data into the platform (``fsml crawl`` or ``scrapy crawl``)."""
