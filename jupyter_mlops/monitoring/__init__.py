"""Monitoring services: drift between two frames (per feature, prediction and dataset),
performance once labels arrive, monitors and alerts."""
