"""The base of fsml: models of record, snapshots, the model archive format and the torch loader.

Only ``models``, ``services``, ``admin`` and ``snapshot`` use Django; ``loader``, ``text``, ``splits``,
``archive`` and ``runtime`` are plain Python that researchers import without a database.
"""
