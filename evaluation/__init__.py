"""Evaluation: run model archives on dataset versions and score them. Plain Python, no Django."""
