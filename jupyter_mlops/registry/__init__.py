"""The model registry: named models, immutable versions, aliases and their audit trail."""
