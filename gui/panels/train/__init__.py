"""The Train panel: datasets, recipes, live curves, runs."""
