"""Automated retraining: gates, retraining jobs and policies (no IPython imports)."""
