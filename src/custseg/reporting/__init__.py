"""Figures and the segment report (HTML and Markdown)."""
