"""The annotation app: projects, the task queue and the labelling API and pages."""
