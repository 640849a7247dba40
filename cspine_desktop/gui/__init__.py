"""The desktop workstation (PySide6): sign-in, worklist, three-plane viewer with vertebra and
fracture overlays, verdicts, exports, settings.

Layout: ``models/`` (Qt-free viewer state and rendering), ``viewer/`` (slice views),
``panels/`` (results, overlays), ``worklist/``, ``study/`` (open → store → analyse → show),
``auth/`` (sign-in, first run, auto-lock), ``dialogs/``, ``workers.py`` (background tasks),
``main_window.py`` and ``app.py`` (the event loop). Start it with ``cspine gui``.
"""
