"""The Match panel: ALBEF's image-text matching (ITC similarity, ITM probability, per-word Grad-CAM),
and ViLT's (ITM only)."""
