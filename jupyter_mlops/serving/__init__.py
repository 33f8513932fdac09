"""Serving services: deployments as local REST endpoints (Open Inference Protocol v2 and
MLflow's ``/invocations``), the inference log and feedback, batch scoring, and export."""
