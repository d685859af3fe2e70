"""Watching a model: is a scored batch still like the customers the model was trained on?

Modules imported one way: :mod:`.rules` (the verdicts and their thresholds, plain
values) and :mod:`.statistics` (the tests and distances, on counts) <- :mod:`.reference`
(the training customers' profile, kept with the model) <- :mod:`.batch` (a batch's
counts, which add up over chunks) <- :mod:`.drift` (per column and per named segment) <-
:mod:`.verdict` (the report and its verdict).

Pure: DataFrames, arrays and plain values in, JSON-ready dicts out.
"""
