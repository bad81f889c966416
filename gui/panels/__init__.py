"""The panel registry: the main window builds its tabs from this list and knows nothing else.

Each entry is (id, title, "module:Class"); the class is constructed as
Class(bridge, settings) and is a QWidget. Modules load lazily, so a panel's
imports cost nothing until the window is built.
"""
from __future__ import annotations

from engine import lazy

PANELS: tuple[tuple[str, str, str], ...] = (
    ("classify", "Classify", "gui.panels.classify.panel:ClassifyPanel"),
    ("attention", "Attention", "gui.panels.attention.panel:AttentionPanel"),
    ("search", "Search", "gui.panels.search.panel:SearchPanel"),
    ("train", "Train", "gui.panels.train.panel:TrainPanel"),
    ("mae", "MAE", "gui.panels.mae.panel:MAEPanel"),
    ("match", "Match", "gui.panels.match.panel:MatchPanel"),
    ("generate", "Generate", "gui.panels.generate.panel:GeneratePanel"),
)


def load(target: str):
    """The panel class a PANELS row names, its module imported when the tab is first shown."""
    return lazy.attribute(target)
