"""custseg: reproducible customer segmentation with KMeans, Hydra, MLflow and DVC."""

__version__ = "0.1.0"


import os

# custseg handles customer data: MLflow's usage telemetry (on by default since 3.x, sent to
# a third-party endpoint) stays off unless the user opts in by setting the variable.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
