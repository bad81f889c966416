"""The MAE panel's back end: mask modes (masks.py), the five views (views.py), the quality
measure of the built-in model (quality.py), the engine jobs (jobs.py) and `python main.py mae`
(cli.py). The model itself is engine.models.mae; its pretraining recipe engine.train.recipes.mae."""

DEFAULT_MAE = "fmnist-mae-tiny"  # the built-in MAE-Tiny: what the panel, the CLI and quality.py start with
