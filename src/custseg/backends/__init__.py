"""Where the customer table lives and the fits run: in memory (pandas, scikit-learn) or Spark."""
