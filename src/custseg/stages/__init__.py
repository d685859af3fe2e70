"""Thin entry points, one per pipeline stage: config in, io and core wired together."""
