"""Training scripts and export. Plain PyTorch: no Django, runs in a researcher's notebook."""
