"""MLflow: runs, the pyfunc model, the registry and its gate, UI links."""
