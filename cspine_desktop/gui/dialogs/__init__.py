"""Dialogs: series chooser, settings (admin), about."""
