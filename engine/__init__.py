"""Everything that computes. Never imports Qt.

Importing this package must stay cheap: torch is imported on the engine thread
(see engine.core), so the GUI can paint its first window before torch loads.
"""
