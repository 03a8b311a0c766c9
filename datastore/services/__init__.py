"""Every write to the data store's models of record, by stage: ``items`` (sources, crawled and imported items),
``crawls`` (crawl jobs), ``artifacts`` (dataset and model versions, model archives) and ``registry`` (model aliases
and their moves). Callers import from here (``from datastore.services import registry`` for the registry)."""

from datastore.services import registry
from datastore.services.artifacts import (
    NAME_RE,
    next_model_version,
    record_dataset_version,
    record_model_metrics,
    register_model_version,
    unpacked_model,
)
from datastore.services.crawls import (
    add_process_stats,
    close_crawl_job,
    finish_crawl_job,
    reopen_crawl_job,
    start_crawl_job,
    write_live_counts,
)
from datastore.services.items import (
    IMAGE_FORMATS,
    MAX_IMAGE_PIXELS,
    MAX_URL,
    ItemError,
    StoreResult,
    build_item,
    check_image,
    get_or_create_source,
    import_images,
    import_texts,
    sha256_text,
    store_items,
)

__all__ = [
    "IMAGE_FORMATS",
    "ItemError",
    "MAX_IMAGE_PIXELS",
    "MAX_URL",
    "NAME_RE",
    "StoreResult",
    "add_process_stats",
    "build_item",
    "check_image",
    "close_crawl_job",
    "finish_crawl_job",
    "get_or_create_source",
    "import_images",
    "import_texts",
    "next_model_version",
    "record_dataset_version",
    "record_model_metrics",
    "register_model_version",
    "registry",
    "reopen_crawl_job",
    "sha256_text",
    "start_crawl_job",
    "store_items",
    "unpacked_model",
    "write_live_counts",
]
