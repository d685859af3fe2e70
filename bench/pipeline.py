"""The pipeline's speed and memory, measured against the targets of issue 8, in one run.

Every figure comes from real commands on a copy of this project (its committed and
uncommitted files) in a temporary directory, as a user runs them:

1. ``seed``: the tutorial way (a loop of 36 MLflow runs, ``mlflow.sklearn.log_model``
   with its defaults and a figure each, ``bench/tutorial.py``) and ``dvc repro`` on a
   fresh copy, then ``dvc repro --force``, on the same embedded default table: seconds per
   MLflow run side by side. ``dvc.lock`` must come out identical to the committed one
   (bit-identical reproduction) and unchanged by ``--force``.
2. ``mall``: ``dvc repro`` on the real Mall Customers table (``../shared/data``), when
   present: the chosen k and segment sizes.
3. ``scale``: ``dvc add data`` + ``dvc repro`` on generated tables of 10k, 100k, 1M and
   10M customers: seconds, and peak memory of the whole process tree (the sum of the
   proportional set sizes of the stage and its workers, sampled every 0.1 s, so pages
   that forked workers share are counted once).

Prints a table and writes it as JSON (``--out``, default ``bench/results.json``).
Run from the project root (``make bench``; ``BENCH_SIZES=10000,100000 make bench`` for
a shorter run). Nothing here is a test: targets are reported as met or not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MALL = ROOT.parent / "shared" / "data" / "mall_customers.csv"
SIZES = (10_000, 100_000, 1_000_000, 10_000_000)

#: issue 8's targets
PER_RUN_SPEEDUP = 12.0
TARGETS = {1_000_000: (90.0, 2048.0), 10_000_000: (600.0, 6144.0)}  # seconds, MiB


@dataclass
class Measured:
    """One command: wall seconds, peak memory of its process tree and the largest process."""

    seconds: float
    peak_tree_mib: float
    peak_process_mib: float


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
    output, _ = process.communicate()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if process.returncode != 0:
        sys.exit(
            f"bench: {' '.join(cmd)} failed in {cwd}:\n{output.decode(errors='replace')[-4000:]}"
        )
    return Measured(round(seconds, 2), round(peak["tree"], 1), round(peak["process"], 1))


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


def bench_seed(work: Path) -> dict:
    """Tutorial loop vs the pipeline on the embedded default table (seconds per run)."""
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
    forced = measure(["dvc", "repro", "--force"], repo, env)
    forced_runs = count_runs(repo / "mlflow.db") - fresh_runs
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
            **asdict(forced),
            "runs": forced_runs,
            "per_run": round(forced.seconds / forced_runs, 3),
            "speedup_per_run": round(tutorial_per_run / (forced.seconds / forced_runs), 2),
            "dvc_lock_unchanged": git_clean(repo, "dvc.lock"),
        },
    }


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


def bench_scale(work: Path, n_rows: int) -> dict:
    """``dvc add data`` and ``dvc repro`` on ``n_rows`` generated customers."""
    repo = project_copy(work / f"scale-{n_rows}")
    env = pipeline_env()
    subprocess.run(
        [BIN / "custseg", "generate", "--rows", str(n_rows), "--force"],
        cwd=repo, check=True, capture_output=True,
    )  # fmt: skip
    added = measure(["dvc", "add", "data"], repo, env)
    repro = measure(["dvc", "repro"], repo, env)
    selection = json.loads((repo / "models/selection.json").read_text())
    result = {
        "rows": n_rows,
        "dvc_add_seconds": added.seconds,
        **asdict(repro),
        "runs": count_runs(repo / "mlflow.db"),
        "k": selection["k"],
    }
    shutil.rmtree(repo)  # a 10M-row copy holds gigabytes
    return result


def criteria_on() -> dict:
    """What the default configuration computes (target 5: the benchmark says which)."""
    sys.path.insert(0, str(ROOT / "src"))
    from custseg.config import compose_settings
    from custseg.core.selection import SCORE_CRITERIA

    settings = compose_settings()
    return {
        "selection_method": settings.selection.method,
        "criteria": ["elbow", *SCORE_CRITERIA],
        "feature_sets": list(settings.sweep.feature_sets),
        "ks": settings.sweep.ks,
        "n_init": settings.model.n_init,
        "silhouette_sample_size": settings.sweep.silhouette_sample_size,
    }


def verdicts(results: dict) -> dict:
    """Each target of issue 8, met or not, from the measured figures."""
    seed = results["seed"]
    out = {
        "seed_speedup_per_run>=12x": seed["dvc_repro_force"]["speedup_per_run"] >= PER_RUN_SPEEDUP,
        "seed_bit_identical": seed["dvc_repro_fresh"]["dvc_lock_identical_to_committed"]
        and seed["dvc_repro_force"]["dvc_lock_unchanged"],
    }
    if results.get("mall"):
        out["mall_k=5"] = results["mall"]["k"] == 5
    scale = {r["rows"]: r for r in results["scale"]}
    for rows, (seconds, mib) in TARGETS.items():
        if rows in scale:
            r = scale[rows]
            out[f"{rows:,}_rows_<={seconds:.0f}s"] = r["seconds"] <= seconds
            out[f"{rows:,}_rows_<={mib:.0f}MiB"] = r["peak_tree_mib"] <= mib
    if 1_000_000 in scale and 10_000_000 in scale:
        growth = scale[10_000_000]["seconds"] / scale[1_000_000]["seconds"]
        out["time_growth_1M_to_10M<=10x"] = growth <= 10
    return out


def print_table(results: dict) -> None:
    seed = results["seed"]
    print("\nSeed table (200 customers), seconds per MLflow run")
    print(f"{'':28}{'seconds':>9}{'runs':>6}{'s/run':>8}{'speed-up':>10}{'peak MiB':>10}")
    rows = [("tutorial loop", seed["tutorial"]), ("dvc repro (fresh copy)", seed["dvc_repro_fresh"]),
            ("dvc repro --force", seed["dvc_repro_force"])]  # fmt: skip
    for name, r in rows:
        speedup = f"{r.get('speedup_per_run', 1.0):.1f}x"
        print(
            f"{name:28}{r['seconds']:9.1f}{r['runs']:6d}{r['per_run']:8.3f}{speedup:>10}{r['peak_tree_mib']:10.0f}"
        )
    if results.get("mall"):
        mall = results["mall"]
        print(
            f"\nMall table: k={mall['k']} ({mall['picks']}), sizes {mall['segment_sizes']}, {mall['seconds']:.1f} s"
        )
    print("\nScale (generated customers): dvc repro, whole pipeline")
    print(
        f"{'rows':>12}{'seconds':>9}{'s/1M rows':>11}{'peak tree MiB':>15}{'largest process MiB':>21}{'k':>4}"
    )
    for r in results["scale"]:
        per_million = r["seconds"] / r["rows"] * 1e6
        print(
            f"{r['rows']:>12,}{r['seconds']:9.1f}{per_million:11.1f}{r['peak_tree_mib']:15.0f}{r['peak_process_mib']:21.0f}{r['k']:4d}"
        )
    print("\nCriteria on:", results["config"])
    print("\nTargets:")
    for name, ok in results["targets"].items():
        print(f"  {'met    ' if ok else 'NOT met'}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sizes = os.environ.get("BENCH_SIZES")
    parser.add_argument(
        "--sizes", default=sizes or ",".join(map(str, SIZES)), help="comma-separated row counts"
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="custseg-bench-") as tmp:
        work = Path(tmp)
        results: dict = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1)},
            "config": criteria_on(),
        }  # fmt: skip
        print("seed table: tutorial loop, dvc repro, dvc repro --force ...", flush=True)
        results["seed"] = bench_seed(work)
        print("Mall table ...", flush=True)
        results["mall"] = bench_mall(work)
        results["scale"] = []
        for n_rows in (int(s) for s in args.sizes.split(",") if s):
            print(f"{n_rows:,} customers ...", flush=True)
            results["scale"].append(bench_scale(work, n_rows))
    results["targets"] = verdicts(results)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
