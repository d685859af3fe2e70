"""The Spark engine: validation, fits, SQL scoring and aggregates (pyspark, an optional extra)."""
