"""The worker side of serving: claiming and running batches, the model runtimes of a worker process, callback
delivery, and the worker's own health and metrics. It imports no web code (``serving.web``); the Celery tasks
that drive it are ``serving.tasks``."""
