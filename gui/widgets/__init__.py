"""Reusable widgets shared by the panels."""
