"""Panels of the main window, each a small widget over one model or service."""
