"""The web side of serving: the job API and the model registry's REST views, submits (checked, grouped, stored,
queued), waiting for a result, calling services' accounts, and the web process's health and metrics. It imports
no worker code (``serving.worker``): it queues jobs by naming their task (``serving.jobs.messages``)."""
