"""The entry points, one per stage, and what they share."""
