"""Serving: the job API for backend services and the Celery workers that run model archives.

Two sides that never import each other, on shared job rules (an import-linter contract keeps it so):
``serving.web`` (views, submits, waiting) under ``serving.urls``, ``serving.worker`` (claims, batches, runtimes,
callback delivery) under ``serving.tasks``, and ``serving.jobs`` below both. The web side queues a worker's task
by its name."""
