"""Serving: the job API for backend services and the Celery workers that run model archives."""
