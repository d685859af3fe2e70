"""The pipeline's speed and memory, measured against the targets of issue 8, in one run.

Every figure comes from real commands on a copy of this project (its committed and
uncommitted files) in a temporary directory, as a user runs them:

1. ``seed``: the tutorial way (a loop of 36 MLflow runs, ``mlflow.sklearn.log_model``
   with its defaults and a figure each, ``bench/tutorial.py``) and ``dvc repro`` on a
   fresh copy, then ``dvc repro --force`` three times (``--seed-repeats``; the median run
   is the figure), on the same embedded default table: seconds per MLflow run side by
   side, and the median run by stage beside each stage's start-up (``custseg-<stage>
   --cfg job``). ``dvc.lock`` must come out identical to the committed one (bit-identical
   reproduction) and unchanged by ``--force``. ``--seed-only`` runs it alone (written to
   ``bench/results-seed.json``).
2. ``mall``: ``dvc repro`` on the real Mall Customers table (``../shared/data``), when
   present: the chosen k and segment sizes.
3. ``scale``: ``dvc add data`` + ``dvc repro`` on generated tables of 10k, 100k, 1M and
   10M customers: seconds, and peak memory of the whole process tree (the sum of the
   proportional set sizes of the stage and its workers, sampled every 0.1 s, so pages
   that forked workers share are counted once), and seconds by stage.
4. ``trust_cost``: what the stability and gap estimates (``custseg.domain.stability.trust``)
   add to the sweep, in process (no DVC): per k, seconds of the model's fit and of
   ``trust()`` for the income_spending feature set with one BLAS thread (as in the
   sweep's workers), on 200 rows (the Mall table when present) and 1M generated rows.
   ``BENCH_TRUST=0`` skips it, ``BENCH_TRUST_SIZES`` sets its row counts, and
   ``--trust-only`` runs it alone (written to ``bench/results-trust.json``).
5. ``engines`` (issue 12): the sweep alone (``custseg-sweep``, one feature set, k = 2..10,
   ``model.n_init=1``: Spark's KMeans has no restarts, so one start each for both) with
   ``engine=sklearn`` and ``engine=spark`` (``local[*]``) on the same validated table of
   1M and 10M generated customers: seconds and peak memory of the process tree (the JVM
   included). Needs pyspark (``make install-spark``); about 20 minutes, so ``make bench``
   runs it only when ``BENCH_ENGINE_SIZES`` names row counts, and ``--engines-only`` runs
   it alone (1M and 10M rows unless ``--engine-sizes`` says; ``bench/results-engines.json``).

Prints a table and writes it as JSON (``--out``, default ``bench/results.json``).
Run from the project root (``make bench``; ``BENCH_SIZES=10000,100000 make bench`` for
a shorter run; ``.venv/bin/python bench/pipeline.py --trust-only`` for section 4 alone).
Nothing here is a test: targets are reported as met or not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    import pandas as pd

    from custseg.config import Settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MALL = ROOT.parent / "shared" / "data" / "mall_customers.csv"
SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
TRUST_SIZES = (200, 1_000_000)
TRUST_FEATURE_SET = "income_spending"
ENGINE_SIZES = (1_000_000, 10_000_000)
#: batches custseg-monitor judges, and the customers its champion is trained on
MONITOR_SIZES = (1_000_000, 10_000_000)
MONITOR_TRAINING_ROWS = 100_000
#: issue 28's goal: a 1M-customer batch judged within this many seconds
MONITOR_1M_SECONDS = 15.0
#: the sweep both engines run in the ``engines`` section
ENGINE_SWEEP = [
    "sweep.feature_sets=[income_spending]",
    "features=income_spending",
    "model.n_init=1",
]

#: issue 8's targets
PER_RUN_SPEEDUP = 12.0
TARGETS = {1_000_000: (90.0, 2048.0), 10_000_000: (600.0, 6144.0)}  # seconds, MiB


@dataclass
class Measured:
    """One command: wall seconds, peak memory of its process tree and the largest process."""

    seconds: float
    peak_tree_mib: float
    peak_process_mib: float


@dataclass
class Output:
    """What a measured command printed: each line with the seconds since it started."""

    lines: list[tuple[float, str]]

    def stage_spans(self, total: float) -> dict[str, float]:
        """Seconds of a ``dvc repro`` (``total`` in all) by part.

        Returns
        -------
        dict
            ``dvc_start``: before the first stage line; then each stage that ran, from
            its ``Running stage '<name>'`` line to the next stage line (``Stage '<name>'
            didn't change, skipping`` included) or, for the last, to the last line
            printed: its command and DVC's work for it (hashing its outputs, writing the
            lock, checking the next stage's inputs); ``dvc_end``: after the last line.
            Empty when no stage line was printed.
        """
        marks = [(t, m) for t, line in self.lines if (m := _STAGE_LINE.match(line))]
        if not marks:
            return {}
        last = self.lines[-1][0]
        spans = {"dvc_start": round(marks[0][0], 2)}
        ends = [t for t, _ in marks[1:]] + [last]
        for (t, mark), end in zip(marks, ends, strict=True):
            if mark.group(1) == "Running stage":
                spans[mark.group(2)] = round(end - t, 2)
        spans["dvc_end"] = round(total - last, 2)
        return spans


#: how ``dvc repro`` names a stage it runs or skips
_STAGE_LINE = re.compile(r"(Running stage|Stage) '([^']+)'")
#: the parts of :meth:`Output.stage_spans` that are DVC's own, not a stage's
DVC_PARTS = ("dvc_start", "dvc_end")


def _pss_mib(process: psutil.Process) -> tuple[float, float]:
    """(PSS, RSS) of one process in MiB; PSS from smaps_rollup where Linux has it."""
    try:
        rss = process.memory_info().rss
        try:
            text = Path(f"/proc/{process.pid}/smaps_rollup").read_text()
            pss = next(
                int(line.split()[1]) * 1024 for line in text.splitlines() if line.startswith("Pss:")
            )
        except (OSError, StopIteration):
            pss = rss
        return pss / 2**20, rss / 2**20
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0, 0.0


def measure(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> Measured:
    """Run ``cmd`` to completion (it must succeed) and measure it."""
    return measure_output(cmd, cwd, env)[0]


def measure_output(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[Measured, Output]:
    """:func:`measure`, with what ``cmd`` printed, line by line, as it printed it."""
    start = time.perf_counter()
    process = psutil.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = {"tree": 0.0, "process": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                tree = [process, *process.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            sizes = [_pss_mib(p) for p in tree]
            peak["tree"] = max(peak["tree"], sum(pss for pss, _ in sizes))
            peak["process"] = max(peak["process"], max(rss for _, rss in sizes))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines = [
        (time.perf_counter() - start, raw.decode(errors="replace").rstrip())
        for raw in process.stdout
    ]
    process.wait()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if process.returncode != 0:
        text = "\n".join(line for _, line in lines)
        sys.exit(f"bench: {' '.join(cmd)} failed in {cwd}:\n{text[-4000:]}")
    measured = Measured(round(seconds, 2), round(peak["tree"], 1), round(peak["process"], 1))
    return measured, Output(lines)


def project_copy(dest: Path) -> Path:
    """This project's files (tracked and new, not ignored) in ``dest``, committed to git."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        [
            "git",
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@localhost",
            "commit",
            "-qm",
            "bench",
        ],
    ):
        subprocess.run(cmd, cwd=dest, check=True)
    return dest


def pipeline_env() -> dict[str, str]:
    """The environment ``make run`` gives DVC: the project's .venv first on PATH."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def count_runs(store: Path) -> int:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        return int(db.execute("select count(*) from runs").fetchone()[0])


def git_clean(repo: Path, path: str) -> bool:
    return subprocess.run(["git", "diff", "--quiet", path], cwd=repo).returncode == 0


def bench_seed(work: Path, repeats: int = 3) -> dict:
    """Tutorial loop vs the pipeline on the embedded default table (seconds per run).

    ``dvc repro --force`` runs ``repeats`` (at least 1) times; the median run is the
    figure (the upper of the two middle ones for an even count: one run on this machine
    varies by 15 %), and it is split by stage, beside each stage's start-up
    (:func:`stage_breakdown`).
    """
    env = pipeline_env()
    repo = project_copy(work / "seed")
    subprocess.run([BIN / "custseg", "generate"], cwd=repo, check=True, capture_output=True)
    tutorial_dir = work / "tutorial"
    tutorial_dir.mkdir()
    tutorial = measure(  # telemetry off, as custseg has it: the same store work on both sides
        [sys.executable, str(ROOT / "bench" / "tutorial.py"), str(repo / "data/customers.csv")],
        tutorial_dir,
        {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    tutorial_runs = count_runs(tutorial_dir / "mlflow.db")
    fresh = measure(["dvc", "repro"], repo, env)
    fresh_runs = count_runs(repo / "mlflow.db")
    reproduced = git_clean(repo, "dvc.lock")
    forced = []
    for _ in range(repeats):
        before = count_runs(repo / "mlflow.db")
        measured, output = measure_output(["dvc", "repro", "--force"], repo, env)
        forced.append((measured, output, count_runs(repo / "mlflow.db") - before))
    forced.sort(key=lambda run: run[0].seconds)
    median, output, forced_runs = forced[len(forced) // 2]
    tutorial_per_run = tutorial.seconds / tutorial_runs
    return {
        "tutorial": {
            **asdict(tutorial),
            "runs": tutorial_runs,
            "per_run": round(tutorial_per_run, 3),
        },
        "dvc_repro_fresh": {
            **asdict(fresh),
            "runs": fresh_runs,
            "per_run": round(fresh.seconds / fresh_runs, 3),
            "speedup_per_run": round(tutorial_per_run / (fresh.seconds / fresh_runs), 2),
            "dvc_lock_identical_to_committed": reproduced,
        },
        "dvc_repro_force": {
            **asdict(median),
            "runs": forced_runs,
            "per_run": round(median.seconds / forced_runs, 3),
            "speedup_per_run": round(tutorial_per_run / (median.seconds / forced_runs), 2),
            "dvc_lock_unchanged": git_clean(repo, "dvc.lock"),
            "seconds_of_each_run": [run[0].seconds for run in forced],
            "budget_for_12x": round(tutorial_per_run / PER_RUN_SPEEDUP * forced_runs, 2),
            "stages": stage_breakdown(repo, env, output, median.seconds),
        },
    }


def stage_breakdown(repo: Path, env: dict[str, str], output: Output, total: float) -> dict:
    """Where one ``dvc repro --force`` spent its time.

    Returns
    -------
    dict
        ``dvc_start`` and ``dvc_end`` in seconds (:meth:`Output.stage_spans`), and per
        stage ``{"span": seconds, "startup": seconds}`` (:func:`stage_startups`).
    """
    spans = output.stage_spans(total)
    stages = [name for name in spans if name not in DVC_PARTS]
    startups = stage_startups(repo, env, stages)
    return {
        **{part: spans[part] for part in DVC_PARTS},
        **{name: {"span": spans[name], "startup": startups[name]} for name in stages},
    }


def stage_startups(repo: Path, env: dict[str, str], stages: list[str]) -> dict[str, float]:
    """Seconds each stage's command takes to start and exit having done nothing: Python,
    its module-level imports and the composed config (Hydra's ``--cfg job``); the least of
    three runs. A lower bound of the stage's fixed cost: what it imports later counts in
    its work."""
    import yaml

    commands = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    out = {}
    for name in stages:
        cmd = [*shlex.split(commands[name]["cmd"]), "--cfg", "job"]
        out[name] = min(measure(cmd, repo, env).seconds for _ in range(3))
    return out


def bench_mall(work: Path) -> dict | None:
    """The real Mall table through the pipeline: chosen k and segment sizes."""
    if not MALL.is_file():
        return None
    repo = project_copy(work / "mall")
    (repo / "data").mkdir(exist_ok=True)
    shutil.copy(MALL, repo / "data/customers.csv")
    env = pipeline_env()
    subprocess.run(["dvc", "add", "-q", "data"], cwd=repo, env=env, check=True)
    measured = measure(["dvc", "repro"], repo, env)
    selection = json.loads((repo / "models/selection.json").read_text())
    sizes = json.loads((repo / "metrics/segments.json").read_text())
    assignments = (repo / "reports/segment_assignments.csv").read_text().splitlines()[1:]
    counts: dict[str, int] = {}
    for line in assignments:
        segment = line.split(",")[1]
        counts[segment] = counts.get(segment, 0) + 1
    return {
        **asdict(measured),
        "k": selection["k"],
        "picks": selection["picks"],
        "segment_sizes": sorted(counts.values()),
        "shares": sizes,
    }


def generated_copy(dest: Path, n_rows: int) -> Path:
    """A :func:`project_copy` in ``dest`` whose default table is ``n_rows`` generated
    customers."""
    repo = project_copy(dest)
    subprocess.run(
        [BIN / "custseg", "generate", "--rows", str(n_rows), "--force"],
        cwd=repo, check=True, capture_output=True,
    )  # fmt: skip
    return repo


def bench_scale(work: Path, n_rows: int) -> dict:
    """``dvc add data`` and ``dvc repro`` on ``n_rows`` generated customers."""
    repo = generated_copy(work / f"scale-{n_rows}", n_rows)
    env = pipeline_env()
    added = measure(["dvc", "add", "data"], repo, env)
    repro, output = measure_output(["dvc", "repro"], repo, env)
    selection = json.loads((repo / "models/selection.json").read_text())
    result = {
        "rows": n_rows,
        "dvc_add_seconds": added.seconds,
        **asdict(repro),
        "runs": count_runs(repo / "mlflow.db"),
        "k": selection["k"],
        "stage_seconds": output.stage_spans(repro.seconds),
    }
    shutil.rmtree(repo)  # a 10M-row copy holds gigabytes
    return result


def trust_customers(n_rows: int, settings: Settings) -> tuple[pd.DataFrame, str]:
    """``n_rows`` customers loaded and validated as the pipeline loads them, and their source.

    200 rows are the Mall table when it is present; otherwise the table is generated
    (seed 42) and round-tripped through a CSV.
    """
    from custseg.storage.data import generate_customers, load_customers, write_csv_atomic

    with tempfile.TemporaryDirectory(prefix="custseg-trust-") as tmp:
        path, source = MALL, "mall"
        if n_rows != 200 or not MALL.is_file():
            path, source = Path(tmp) / "customers.csv", "generated"
            write_csv_atomic(generate_customers(n_rows, seed=42), path)
        table, _ = load_customers(replace(settings.data, path=str(path)))
    return table, source


def bench_trust(n_rows: int) -> dict:
    """Seconds of the model's fit and of its stability and gap estimate, per k.

    For each k of the sweep, on the income_spending feature set with the default
    settings (KMeans) and one BLAS thread (:func:`custseg.backends.parallel.fit_limits`, as the
    sweep's workers run), as :func:`custseg.pipeline.sweep.fit_and_trust` calls them:
    ``fit_seconds`` is the engine's fit alone (the ``fit_seconds`` metric),
    ``fit_score_seconds`` the whole ``fit_model`` call (encoding, and the silhouette,
    Calinski-Harabasz and Davies-Bouldin scores), ``trust_seconds`` the ``trust()`` call
    with the engine's refit. Tables of at most 10,000 rows take the median of 3 repeats
    (their times are milliseconds); larger ones are timed once.

    Parameters
    ----------
    n_rows : int
        Customers in the table (see :func:`trust_customers`).
    """
    sys.path.insert(0, str(ROOT / "src"))
    from custseg.backends.parallel import fit_limits
    from custseg.config import compose_settings
    from custseg.domain.algorithms import refit_for
    from custseg.domain.clustering import fit_model, segment_model
    from custseg.domain.stability import trust

    settings = compose_settings()
    table, source = trust_customers(n_rows, settings)
    feature_set = settings.feature_catalog[TRUST_FEATURE_SET]
    scaler, model, params = settings.preprocess.scaler, settings.model, settings.selection.trust
    fit_args = (settings.sweep.silhouette_sample_size, settings.preprocess.categorical_weight)
    repeats = 3 if len(table) <= 10_000 else 1
    per_k = []
    with fit_limits():
        warm = fit_model(table.head(200), feature_set, scaler, model, 2)  # imports, first calls
        warm_refit = refit_for(model, segment_model(warm, scaler, {}), params.n_init)
        trust(warm.transformed, warm.labels, 2, params, warm_refit)
        for k in settings.sweep.ks:
            times: dict[str, list[float]] = {"fit": [], "fit_score": [], "trust": []}
            for _ in range(repeats):
                start = time.perf_counter()
                result = fit_model(table, feature_set, scaler, model, k, *fit_args)
                times["fit_score"].append(time.perf_counter() - start)
                times["fit"].append(result.metrics["fit_seconds"])
                described = segment_model(result, scaler, {})  # names are not needed
                refit = refit_for(model, described, params.n_init)
                start = time.perf_counter()
                trust(result.transformed, result.labels, k, params, refit)
                times["trust"].append(time.perf_counter() - start)
            median = {name: statistics.median(values) for name, values in times.items()}
            per_k.append({"k": k, **{f"{n}_seconds": round(s, 4) for n, s in median.items()}})
    total = {n: sum(r[f"{n}_seconds"] for r in per_k) for n in ("fit", "fit_score", "trust")}
    return {
        "rows": len(table),
        "source": source,
        "repeats": repeats,
        "per_k": per_k,
        "total": {f"{n}_seconds": round(s, 3) for n, s in total.items()},
        "trust_per_fit": round(total["trust"] / total["fit"], 3),
        "trust_per_fit_score": round(total["trust"] / total["fit_score"], 3),
    }


def trust_cost(sizes: list[int]) -> dict:
    """:func:`bench_trust` for each of ``sizes``, with the settings it ran with."""
    sys.path.insert(0, str(ROOT / "src"))
    from custseg.config import compose_settings

    settings = compose_settings()
    return {
        "feature_set": TRUST_FEATURE_SET,
        "model": settings.model.name,
        "model_n_init": settings.model.n_init,
        "trust": asdict(settings.selection.trust),
        "blas_threads": 1,
        "sizes": [bench_trust(n_rows) for n_rows in sizes],
    }


def print_trust(cost: dict) -> None:
    """The ``trust_cost`` table: per k and in total over the sweep's ks."""
    trust = cost["trust"]
    print(
        f"\nTrust cost ({cost['feature_set']}, one BLAS thread): {cost['model']} fit (n_init="
        f"{cost['model_n_init']}) vs trust() = {trust['resamples']} bootstrap refits +"
        f" {trust['references']} gap references (n_init={trust['n_init']}) on <="
        f" {trust['sample_size']} rows"
    )
    print(f"{'rows':>10}{'k':>6}{'fit s':>10}{'fit+scores s':>14}{'trust s':>10}{'trust/fit':>11}")
    for size in cost["sizes"]:
        for r in size["per_k"]:
            ratio = r["trust_seconds"] / r["fit_seconds"]
            print(
                f"{size['rows']:>10,}{r['k']:>6}{r['fit_seconds']:10.3f}"
                f"{r['fit_score_seconds']:14.3f}{r['trust_seconds']:10.3f}{ratio:10.2f}x"
            )
        t, ks = size["total"], f"{size['per_k'][0]['k']}-{size['per_k'][-1]['k']}"
        print(
            f"{size['rows']:>10,}{ks:>6}{t['fit_seconds']:10.3f}{t['fit_score_seconds']:14.3f}"
            f"{t['trust_seconds']:10.3f}{size['trust_per_fit']:10.2f}x  total ({size['source']}):"
            f" trust adds {size['trust_per_fit']:.0%} of the fit time,"
            f" {size['trust_per_fit_score']:.0%} of fit+scores"
        )


def bench_restarts(n_rows: int) -> dict:
    """The n_init policy at scale, per k: ten restarts on every row against restarts on a
    sample refined on every row (``model.restarts_sample_size``), on ``n_rows`` generated
    customers, the final feature set, one BLAS thread (as the sweep's workers): seconds,
    inertia and the adjusted Rand index of the two partitions."""
    sys.path.insert(0, str(ROOT / "src"))
    from custseg.backends.parallel import fit_limits
    from custseg.config import compose_settings
    from custseg.domain.agreement import adjusted_rand
    from custseg.domain.clustering import fit_model

    settings = compose_settings()
    table, _ = trust_customers(n_rows, settings)
    feature_set, scaler = settings.features, settings.preprocess.scaler
    sampled = settings.model
    full = replace(sampled, restarts_sample_size=None)
    sample = settings.sweep.silhouette_sample_size
    per_k = []
    with fit_limits():
        for k in settings.sweep.ks:
            print(f"  k={k} ...", flush=True)
            # a silhouette sample as the sweep's (the scores are not compared here)
            a = fit_model(table, feature_set, scaler, full, k, sample)
            b = fit_model(table, feature_set, scaler, sampled, k, sample)
            per_k.append(
                {
                    "k": k,
                    "full_seconds": round(a.metrics["fit_seconds"], 3),
                    "sample_seconds": round(b.metrics["fit_seconds"], 3),
                    "inertia_ratio": round(b.metrics["inertia"] / a.metrics["inertia"], 6),
                    "ari": round(adjusted_rand(a.labels, b.labels), 5),
                }
            )
    return {
        "rows": len(table),
        "feature_set": feature_set.name,
        "n_init": sampled.n_init,
        "restarts_sample_size": sampled.restarts_sample_size,
        "per_k": per_k,
        "speedup": round(
            sum(r["full_seconds"] for r in per_k) / sum(r["sample_seconds"] for r in per_k), 2
        ),
    }


def print_restarts(r: dict) -> None:
    """The ``restarts`` table."""
    print(
        f"\nn_init policy ({r['rows']:,} rows, {r['feature_set']}, one BLAS thread): "
        f"{r['n_init']} restarts on every row vs on {r['restarts_sample_size']:,} rows + "
        "one refinement on every row"
    )
    print(f"{'k':>4}{'every row s':>13}{'sample s':>10}{'inertia ratio':>15}{'ARI':>9}")
    for k in r["per_k"]:
        print(
            f"{k['k']:>4}{k['full_seconds']:13.2f}{k['sample_seconds']:10.2f}"
            f"{k['inertia_ratio']:15.6f}{k['ari']:9.5f}"
        )
    print(f"  {r['speedup']:.1f}x faster in total")


def bench_engines(work: Path, n_rows: int) -> dict:
    """The sweep of :data:`ENGINE_SWEEP` on ``n_rows`` generated customers with each
    engine, after one ``custseg-validate`` (Spark reads its Parquet)."""
    repo = generated_copy(work / f"engines-{n_rows}", n_rows)
    env = pipeline_env()
    validated = measure([str(BIN / "custseg-validate")], repo, env)
    result: dict = {"rows": n_rows, "validate_seconds": validated.seconds, "sweep": ENGINE_SWEEP}
    for engine in ("sklearn", "spark"):
        print(f"  engine={engine} ...", flush=True)
        args = [f"engine={engine}", *ENGINE_SWEEP, f"sweep.output_dir=sweeps-{engine}"]
        log = repo / f"sweep-{engine}.log"
        cmd = [
            "sh",
            "-c",
            f'"$0" "$@" > {shlex.quote(str(log))}',
            str(BIN / "custseg-sweep"),
            *args,
        ]
        measured = measure(cmd, repo, env)
        result[engine] = {**asdict(measured), "k": _selected_k(log.read_text())}
    shutil.rmtree(repo)
    return result


def _selected_k(output: str) -> int | None:
    """The k of the sweep's "Selected run: <id> (<feature set>, k=<k>, ...)" line."""
    found = re.search(r"^Selected run: \S+ \([^,]+, k=(\d+)", output, re.MULTILINE)
    return int(found.group(1)) if found else None


def print_engines(rows: list[dict]) -> None:
    """The ``engines`` table."""
    print(f"\nEngines: custseg-sweep {' '.join(ENGINE_SWEEP)} (after custseg-validate)")
    print(
        f"{'rows':>12}{'engine':>9}{'seconds':>9}{'peak tree MiB':>15}{'k':>4}{'Spark/sklearn':>15}"
    )
    for r in rows:
        for engine in ("sklearn", "spark"):
            e = r[engine]
            ratio = f"{e['seconds'] / r['sklearn']['seconds']:.1f}x" if engine == "spark" else ""
            print(f"{r['rows']:>12,}{engine:>9}{e['seconds']:9.1f}{e['peak_tree_mib']:15.0f}"
                  f"{str(e['k']):>4}{ratio:>15}")  # fmt: skip


def bench_monitor(work: Path, sizes: list[int]) -> dict:
    """``custseg-monitor`` on batches of ``sizes`` new generated customers (another seed),
    against the champion of a pipeline run on ``MONITOR_TRAINING_ROWS`` customers."""
    repo = generated_copy(work / "monitor", MONITOR_TRAINING_ROWS)
    env = pipeline_env()
    measure(["dvc", "add", "data"], repo, env)
    measure(["dvc", "repro"], repo, env)
    rows = []
    for n_rows in sizes:
        batch = work / f"batch-{n_rows}.csv"
        subprocess.run(
            [BIN / "custseg", "generate", "--rows", str(n_rows), "--seed", "8", "--out", batch],
            check=True, capture_output=True,
        )  # fmt: skip
        # the model of this data (@champion is the catalog's, registered without its
        # training customers)
        monitor = [str(BIN / "custseg-monitor"), f"monitor.input={batch}",
                   "monitor.model=models/segmentation.json"]  # fmt: skip
        measured = measure(monitor, repo, env)
        report = json.loads((repo / "monitoring" / f"{batch.stem}.json").read_text())
        rows.append(
            {"rows": n_rows, "batch_mib": round(batch.stat().st_size / 2**20, 1),
             **asdict(measured), "verdict": report["verdict"]}
        )  # fmt: skip
        batch.unlink()
    shutil.rmtree(repo)
    return {"training_rows": MONITOR_TRAINING_ROWS, "batches": rows}


def monitor_verdicts(monitor: dict) -> dict:
    """The monitoring goals: 1M customers within 15 s; memory bounded by chunks (10x the
    rows, at most twice the peak)."""
    by_rows = {r["rows"]: r for r in monitor["batches"]}
    out = {}
    if 1_000_000 in by_rows:
        out[f"monitor_1M_<={MONITOR_1M_SECONDS:.0f}s"] = (
            by_rows[1_000_000]["seconds"] <= MONITOR_1M_SECONDS
        )
    if 1_000_000 in by_rows and 10_000_000 in by_rows:
        growth = by_rows[10_000_000]["peak_tree_mib"] / by_rows[1_000_000]["peak_tree_mib"]
        out["monitor_memory_bounded_1M_to_10M<=2x"] = growth <= 2
    return out


def print_monitor(monitor: dict) -> None:
    print(
        f"\nMonitoring: custseg-monitor against a champion of {monitor['training_rows']:,} customers"
    )
    print(
        f"{'rows':>12}{'CSV MiB':>9}{'seconds':>9}{'s/1M rows':>11}{'peak tree MiB':>15}{'verdict':>10}"
    )
    for r in monitor["batches"]:
        per_million = r["seconds"] / r["rows"] * 1e6
        print(f"{r['rows']:>12,}{r['batch_mib']:9.0f}{r['seconds']:9.1f}{per_million:11.1f}"
              f"{r['peak_tree_mib']:15.0f}{r['verdict']:>10}")  # fmt: skip


def criteria_on() -> dict:
    """What the default configuration computes (target 5: the benchmark says which)."""
    sys.path.insert(0, str(ROOT / "src"))
    from custseg.config import compose_settings
    from custseg.domain.selection import SCORE_CRITERIA

    settings = compose_settings()
    return {
        "selection_method": settings.selection.method,
        "criteria": ["elbow", *SCORE_CRITERIA],
        "feature_sets": list(settings.sweep.feature_sets),
        "ks": settings.sweep.ks,
        "n_init": settings.model.n_init,
        "silhouette_sample_size": settings.sweep.silhouette_sample_size,
    }


def seed_verdicts(seed: dict) -> dict:
    """The targets of the seed section: 12x per run, bit-identical reproduction."""
    return {
        "seed_speedup_per_run>=12x": seed["dvc_repro_force"]["speedup_per_run"] >= PER_RUN_SPEEDUP,
        "seed_bit_identical": seed["dvc_repro_fresh"]["dvc_lock_identical_to_committed"]
        and seed["dvc_repro_force"]["dvc_lock_unchanged"],
    }


def verdicts(results: dict) -> dict:
    """Each target of issue 8, met or not, from the measured figures."""
    out = seed_verdicts(results["seed"])
    if results.get("mall"):
        out["mall_k=5"] = results["mall"]["k"] == 5
    if results.get("monitor"):
        out |= monitor_verdicts(results["monitor"])
    return out | scale_verdicts(results["scale"])


def scale_verdicts(rows: list[dict]) -> dict:
    """The targets of the scale section (time and peak memory per size, linear growth)."""
    out = {}
    scale = {r["rows"]: r for r in rows}
    for n_rows, (seconds, mib) in TARGETS.items():
        if n_rows in scale:
            r = scale[n_rows]
            out[f"{n_rows:,}_rows_<={seconds:.0f}s"] = r["seconds"] <= seconds
            out[f"{n_rows:,}_rows_<={mib:.0f}MiB"] = r["peak_tree_mib"] <= mib
    if 1_000_000 in scale and 10_000_000 in scale:
        growth = scale[10_000_000]["seconds"] / scale[1_000_000]["seconds"]
        out["time_growth_1M_to_10M<=10x"] = growth <= 10
    return out


def print_scale(rows: list[dict]) -> None:
    print("\nScale (generated customers): dvc repro, whole pipeline")
    print(
        f"{'rows':>12}{'seconds':>9}{'s/1M rows':>11}{'peak tree MiB':>15}{'largest process MiB':>21}{'k':>4}"
    )
    for r in rows:
        per_million = r["seconds"] / r["rows"] * 1e6
        print(
            f"{r['rows']:>12,}{r['seconds']:9.1f}{per_million:11.1f}{r['peak_tree_mib']:15.0f}{r['peak_process_mib']:21.0f}{r['k']:4d}"
        )
    for r in rows:
        if "stage_seconds" in r:  # results written before the split existed have none
            spans = ", ".join(f"{name} {t:.1f}" for name, t in r["stage_seconds"].items())
            print(f"{r['rows']:>12,} rows, seconds by stage: {spans}")


def print_seed(seed: dict) -> None:
    print("\nSeed table (200 customers), seconds per MLflow run")
    print(f"{'':28}{'seconds':>9}{'runs':>6}{'s/run':>8}{'speed-up':>10}{'peak MiB':>10}")
    rows = [("tutorial loop", seed["tutorial"]), ("dvc repro (fresh copy)", seed["dvc_repro_fresh"]),
            ("dvc repro --force (median)", seed["dvc_repro_force"])]  # fmt: skip
    for name, r in rows:
        speedup = f"{r.get('speedup_per_run', 1.0):.1f}x"
        print(
            f"{name:28}{r['seconds']:9.1f}{r['runs']:6d}{r['per_run']:8.3f}{speedup:>10}{r['peak_tree_mib']:10.0f}"
        )
    forced = seed["dvc_repro_force"]
    if "stages" not in forced:  # results written before the breakdown existed
        return
    runs = ", ".join(f"{s:.1f}" for s in forced["seconds_of_each_run"])
    print(f"\ndvc repro --force: runs of {runs} s; 12x per run is {forced['budget_for_12x']:.1f} s")
    parts = forced["stages"]
    stages = {k: v for k, v in parts.items() if k not in DVC_PARTS}
    print(f"{'stage (median run)':28}{'seconds':>9}{'start-up':>10}{'the rest':>10}")
    print(f"{'DVC before the first stage':28}{parts['dvc_start']:9.1f}")
    for name, t in stages.items():
        print(f"{name:28}{t['span']:9.1f}{t['startup']:10.1f}{t['span'] - t['startup']:10.1f}")
    print(f"{'DVC after the last line':28}{parts.get('dvc_end', 0.0):9.1f}")
    fixed = sum(parts.get(p, 0.0) for p in DVC_PARTS) + sum(t["startup"] for t in stages.values())
    print(f"{'DVC and start-ups':28}{fixed:9.1f}")


def print_table(results: dict) -> None:
    print_seed(results["seed"])
    if results.get("mall"):
        mall = results["mall"]
        print(
            f"\nMall table: k={mall['k']} ({mall['picks']}), sizes {mall['segment_sizes']}, {mall['seconds']:.1f} s"
        )
    print_scale(results["scale"])
    if results.get("trust_cost"):
        print_trust(results["trust_cost"])
    if results.get("restarts"):
        print_restarts(results["restarts"])
    if results.get("engines"):
        print_engines(results["engines"])
    if results.get("monitor"):
        print_monitor(results["monitor"])
    print("\nCriteria on:", results["config"])
    print("\nTargets:")
    for name, ok in results["targets"].items():
        print(f"  {'met    ' if ok else 'NOT met'}  {name}")


def machine() -> dict:
    """The machine, and whether pyspark is installed (MLflow then imports it in every
    stage that tracks: ``make run`` installs it only with ``make install-spark``)."""
    import importlib.util

    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "pyspark_installed": importlib.util.find_spec("pyspark") is not None}  # fmt: skip


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: at least 1 run is needed")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sizes = os.environ.get("BENCH_SIZES")
    parser.add_argument(
        "--sizes", default=sizes or ",".join(map(str, SIZES)), help="comma-separated row counts"
    )
    parser.add_argument(
        "--trust-sizes",
        default=os.environ.get("BENCH_TRUST_SIZES") or ",".join(map(str, TRUST_SIZES)),
        help="comma-separated row counts of the trust_cost section",
    )
    parser.add_argument("--trust-only", action="store_true", help="run only the trust_cost section")
    parser.add_argument(
        "--restart-rows",
        type=int,
        default=int(os.environ.get("BENCH_RESTART_ROWS", "1000000")),
        help="rows of the n_init policy section (0: skip it)",
    )
    parser.add_argument(
        "--restarts-only", action="store_true", help="run only the n_init policy section"
    )
    parser.add_argument(
        "--engine-sizes",
        default=os.environ.get("BENCH_ENGINE_SIZES"),
        help="comma-separated row counts of the engines section (default: skipped, and "
        "1M,10M with --engines-only)",
    )
    parser.add_argument("--engines-only", action="store_true", help="run only the engines section")
    parser.add_argument(
        "--monitor-sizes",
        default=os.environ.get("BENCH_MONITOR_SIZES") or ",".join(map(str, MONITOR_SIZES)),
        help="comma-separated batch sizes of the monitoring section (empty: skip it)",
    )
    parser.add_argument(
        "--monitor-only", action="store_true", help="run only the monitoring section"
    )
    parser.add_argument(
        "--seed-repeats",
        type=_at_least_one,
        default=int(os.environ.get("BENCH_SEED_REPEATS", "3")),
        help="runs of dvc repro --force on the seed table (at least 1; the median run is "
        "reported, the upper middle one for an even count)",
    )
    parser.add_argument(
        "--seed-only",
        action="store_true",
        help="run only the seed section (tutorial loop against the pipeline)",
    )
    parser.add_argument(
        "--scale-only",
        action="store_true",
        help="run only the scale section (whole pipeline on --sizes generated customers)",
    )
    parser.add_argument(
        "--out",
        help="JSON written (default bench/results.json; with --seed-only, --scale-only, "
        "--trust-only, --engines-only: bench/results-<section>.json)",
    )
    args = parser.parse_args()
    trust_sizes = [int(s) for s in args.trust_sizes.split(",") if s]
    if args.trust_only:
        out = Path(args.out or ROOT / "bench" / "results-trust.json")
        print(f"trust cost: {', '.join(f'{n:,}' for n in trust_sizes)} customers ...", flush=True)
        results = {"machine": machine(), "trust_cost": trust_cost(trust_sizes)}
        out.write_text(json.dumps(results, indent=2) + "\n")
        print_trust(results["trust_cost"])
        print(f"\nwritten: {out}")
        return
    default_sizes = ",".join(map(str, ENGINE_SIZES)) if args.engines_only else ""
    engine_sizes = [int(s) for s in (args.engine_sizes or default_sizes).split(",") if s]
    if not machine()["pyspark_installed"] and engine_sizes:
        print("engines: skipped, pyspark is not installed (make install-spark)", flush=True)
        engine_sizes = []
    if args.engines_only:
        out = Path(args.out or ROOT / "bench" / "results-engines.json")
        with tempfile.TemporaryDirectory(prefix="custseg-bench-") as tmp:
            rows = []
            for n_rows in engine_sizes:
                print(f"engines: {n_rows:,} customers ...", flush=True)
                rows.append(bench_engines(Path(tmp), n_rows))
                out.write_text(json.dumps({"machine": machine(), "engines": rows}, indent=2) + "\n")
        print_engines(rows)
        print(f"\nwritten: {out}")
        return
    monitor_sizes = [int(s) for s in args.monitor_sizes.split(",") if s]
    if args.monitor_only:
        out = Path(args.out or ROOT / "bench" / "results-monitor.json")
        with tempfile.TemporaryDirectory(prefix="custseg-bench-") as tmp:
            print(
                f"monitoring: {', '.join(f'{n:,}' for n in monitor_sizes)} customers ...",
                flush=True,
            )
            monitor = bench_monitor(Path(tmp), monitor_sizes)
        results = {"machine": machine(), "monitor": monitor, "targets": monitor_verdicts(monitor)}
        out.write_text(json.dumps(results, indent=2) + "\n")
        print_monitor(monitor)
        print(f"targets: {results['targets']}\nwritten: {out}")
        return
    if args.scale_only:
        out = Path(args.out or ROOT / "bench" / "results-scale.json")
        results = {"machine": machine(), "config": criteria_on(), "scale": []}
        with tempfile.TemporaryDirectory(prefix="custseg-bench-") as tmp:
            for n_rows in (int(s) for s in args.sizes.split(",") if s):
                print(f"{n_rows:,} customers ...", flush=True)
                results["scale"].append(bench_scale(Path(tmp), n_rows))
        results["targets"] = scale_verdicts(results["scale"])
        out.write_text(json.dumps(results, indent=2) + "\n")
        print_scale(results["scale"])
        print(f"targets: {results['targets']}\nwritten: {out}")
        return
    if args.seed_only:
        out = Path(args.out or ROOT / "bench" / "results-seed.json")
        results = {"machine": machine(), "config": criteria_on()}
        with tempfile.TemporaryDirectory(prefix="custseg-bench-") as tmp:
            print("seed table: tutorial loop, dvc repro, dvc repro --force ...", flush=True)
            results["seed"] = bench_seed(Path(tmp), args.seed_repeats)
        results["targets"] = seed_verdicts(results["seed"])
        out.write_text(json.dumps(results, indent=2) + "\n")
        print_seed(results["seed"])
        print(f"targets: {results['targets']}\nwritten: {out}")
        return
    if args.restarts_only:
        restarts = bench_restarts(args.restart_rows)
        print_restarts(restarts)
        if args.out:
            Path(args.out).write_text(json.dumps(restarts, indent=2) + "\n")
        return
    out = Path(args.out or ROOT / "bench" / "results.json")
    with tempfile.TemporaryDirectory(prefix="custseg-bench-") as tmp:
        work = Path(tmp)
        results: dict = {"machine": machine(), "config": criteria_on()}
        print("seed table: tutorial loop, dvc repro, dvc repro --force ...", flush=True)
        results["seed"] = bench_seed(work, args.seed_repeats)
        print("Mall table ...", flush=True)
        results["mall"] = bench_mall(work)
        results["scale"] = []
        for n_rows in (int(s) for s in args.sizes.split(",") if s):
            print(f"{n_rows:,} customers ...", flush=True)
            results["scale"].append(bench_scale(work, n_rows))
        results["engines"] = []
        for n_rows in engine_sizes:
            print(f"engines: {n_rows:,} customers ...", flush=True)
            results["engines"].append(bench_engines(work, n_rows))
        if monitor_sizes:
            print(
                f"monitoring: {', '.join(f'{n:,}' for n in monitor_sizes)} customers ...",
                flush=True,
            )
            results["monitor"] = bench_monitor(work, monitor_sizes)
    if os.environ.get("BENCH_TRUST", "1") != "0" and trust_sizes:
        print(f"trust cost: {', '.join(f'{n:,}' for n in trust_sizes)} customers ...", flush=True)
        results["trust_cost"] = trust_cost(trust_sizes)
    if args.restart_rows:
        print(f"n_init policy: {args.restart_rows:,} customers ...", flush=True)
        results["restarts"] = bench_restarts(args.restart_rows)
    results["targets"] = verdicts(results)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
