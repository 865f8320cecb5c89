"""Workflow versions: runs pinned to their definition, hot reload, the versions list."""
