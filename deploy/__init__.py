"""Packaging and shipping: the ``fsml`` command line, the end-to-end demo, Docker files."""
