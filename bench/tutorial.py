"""The tutorial way to sweep KMeans with MLflow: the baseline ``bench/pipeline.py`` times.

One process, a loop of 36 runs (4 feature sets x k = 2..10), each with its params, two
metrics, a scatter figure and ``mlflow.sklearn.log_model`` with its defaults (requirements
inferred), into ``sqlite:///mlflow.db`` in the current directory, as most tutorials and
hand-rolled scripts do it. Usage: ``python bench/tutorial.py path/to/customers.csv``.
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import mlflow.sklearn  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.compose import make_column_transformer  # noqa: E402
from sklearn.metrics import silhouette_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

FEATURE_SETS = {
    "income_spending": ["Annual Income (k$)", "Spending Score (1-100)"],
    "age_spending": ["Age", "Spending Score (1-100)"],
    "age_income_spending": ["Age", "Annual Income (k$)", "Spending Score (1-100)"],
    "all": ["Age", "Annual Income (k$)", "Spending Score (1-100)", "Gender"],
}


def main(path: str) -> None:
    df = pd.read_csv(path)
    mlflow.set_tracking_uri("sqlite:///mlflow.db")
    mlflow.set_experiment("tutorial")
    for name, columns in FEATURE_SETS.items():
        numeric = [c for c in columns if c != "Gender"]
        categorical = [c for c in columns if c == "Gender"]
        for k in range(2, 11):
            with mlflow.start_run(run_name=f"{name}-k{k}"):
                preprocess = make_column_transformer(
                    (StandardScaler(), numeric), (OneHotEncoder(), categorical)
                )
                model = make_pipeline(preprocess, KMeans(n_clusters=k, n_init=10, random_state=42))
                labels = model.fit_predict(df[columns])
                X = model[:-1].transform(df[columns])
                mlflow.log_params({"feature_set": name, "k": k, "n_init": 10})
                mlflow.log_metrics(
                    {"inertia": model[-1].inertia_, "silhouette": silhouette_score(X, labels)}
                )
                fig, ax = plt.subplots()
                ax.scatter(df[numeric[0]], df[numeric[-1]], c=labels)
                ax.set_xlabel(numeric[0])
                ax.set_ylabel(numeric[-1])
                mlflow.log_figure(fig, "clusters.png")
                plt.close(fig)
                mlflow.sklearn.log_model(model, name="model")


if __name__ == "__main__":
    main(sys.argv[1])
