"""Evaluation: run model archives on dataset versions, score them (``metrics``, ``evaluate``, ``plots``: no
Django), store and browse the results (``records``, ``views``: the Django side)."""
