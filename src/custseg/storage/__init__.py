"""Reading and validating tables and logs; the pipeline's output files."""
