"""Benchmarks behind two design choices, printed as side-by-side figures.

1. Logging a model with explicit pip requirements vs letting MLflow infer them.
2. Silhouette on a seeded sample (``sweep.silhouette_sample_size``) vs the exact score,
   on a large generated table: time, peak memory and the difference in the score.

Run from the project root::

    .venv/bin/python bench/benchmarks.py                 # both, default sizes
    .venv/bin/python bench/benchmarks.py --models 5 --rows 40000

Nothing here is a pass/fail test; the figures are for the README and issue notes.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import mlflow
from sklearn.metrics import silhouette_score

from custseg.config import Settings, compose_settings
from custseg.domain.clustering import fit_model
from custseg.domain.features import ModelParams
from custseg.domain.identity import identify
from custseg.pipeline.console import quiet_console
from custseg.storage.data import generate_customers, load_customers, write_csv_atomic
from custseg.tracking.runs import MODEL_REQUIREMENTS, log_segment_model


def customers(n_rows: int, settings: Settings):
    """A generated table of ``n_rows``, written and loaded (validated) like real data."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "customers.csv"
        write_csv_atomic(generate_customers(n_rows, seed=42), path)
        table, _ = load_customers(dataclasses.replace(settings.data, path=str(path)))
    return table


def bench_model_logging(settings: Settings, n_models: int) -> None:
    """Seconds per ``log_model``: explicit requirements vs MLflow's inference."""
    table = customers(200, settings)
    result = fit_model(table, settings.features, "standard", ModelParams(), k=5)
    model, _ = identify(result, table, settings.personas, "standard", "bench")
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tracking_uri(f"sqlite:///{Path(tmp) / 'mlflow.db'}")
        mlflow.set_experiment("bench")
        timings: dict[str, list[float]] = {"explicit": [], "inferred": []}
        for _ in range(n_models):
            for mode in ("explicit", "inferred"):
                requirements = list(MODEL_REQUIREMENTS) if mode == "explicit" else None
                with mlflow.start_run():
                    start = time.perf_counter()
                    log_segment_model(model, pip_requirements=requirements)
                    timings[mode].append(time.perf_counter() - start)
    explicit = statistics.median(timings["explicit"])
    inferred = statistics.median(timings["inferred"])
    print(f"model logging, median of {n_models} per mode (seconds per model)")
    print(f"  explicit requirements   {explicit:7.3f}")
    print(f"  inferred requirements   {inferred:7.3f}")
    print(f"  inferred / explicit     {inferred / explicit:7.1f}x")


def bench_silhouette(settings: Settings, n_rows: int, sample_size: int) -> None:
    """Exact silhouette vs the seeded sample the sweep uses above ``sample_size`` rows."""
    table = customers(n_rows, settings)
    result = fit_model(table, settings.features, "standard", ModelParams(n_init=3), k=5)
    X = result.transformed
    labels = result.labels

    def measure(**kwargs) -> tuple[float, float, float]:
        tracemalloc.start()
        start = time.perf_counter()
        score = silhouette_score(X, labels, **kwargs)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        return score, seconds, peak

    exact, exact_s, exact_mb = measure()
    sampled, sampled_s, sampled_mb = measure(sample_size=sample_size, random_state=0)
    print(f"silhouette on {n_rows:,} rows (income_spending, k=5)")
    print(f"  exact                   {exact:.4f}  {exact_s:7.2f} s  peak {exact_mb:8.1f} MiB")
    print(
        f"  sample of {sample_size:<,}        {sampled:.4f}  {sampled_s:7.2f} s"
        f"  peak {sampled_mb:8.1f} MiB"
    )
    print(
        f"  exact / sampled         time {exact_s / sampled_s:.1f}x, "
        f"memory {exact_mb / sampled_mb:.1f}x, score difference {abs(exact - sampled):.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=3, help="models logged per mode")
    parser.add_argument("--rows", type=int, default=30_000, help="rows for the silhouette")
    parser.add_argument("--sample", type=int, default=10_000, help="silhouette sample size")
    args = parser.parse_args()
    quiet_console()
    settings = compose_settings()
    bench_model_logging(settings, args.models)
    print()
    bench_silhouette(settings, args.rows, args.sample)


if __name__ == "__main__":
    main()
