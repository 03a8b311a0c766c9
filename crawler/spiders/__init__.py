"""Spiders of the fsml crawler."""
