"""Classify: drop a photo, see the top-5 ImageNet classes."""
