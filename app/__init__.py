"""Rollback Desk: an incident-ops console for AI features."""

__version__ = "0.1.0"
