"""The Match panel's engine side: ALBEF's ITC similarity, ITM probability and per-word Grad-CAM
(ViLT models: ITM and Grad-CAM, no ITC)."""
