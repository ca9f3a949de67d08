"""The desktop IDE around the Harmony Board: main window, docks, dialogs (QtWidgets).

Nothing here is imported by ``import symphony``; :func:`symphony.ui.app.run_gui` is the entry.
"""
