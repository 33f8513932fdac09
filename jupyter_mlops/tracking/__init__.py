"""Experiment tracking services: runs, their capture, and queries over them."""
