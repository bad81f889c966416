"""Training: one device-agnostic loop (loop.py), recipes that plug into it (recipes/),
checkpoints that resume exactly (checkpoint.py) and the models they train (vit.py)."""
