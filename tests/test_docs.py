"""The README and docs/: every example that shows output is what the code prints, every
block says what it holds, every link resolves.

A block that shows output carries a marker on the line above it,
``<!-- output: tests/test_x.py::test_name -->``; the named test reads the blocks marked with
its name (:func:`conftest.shown_outputs`) and compares them with what the real command
printed or wrote, parts that vary by nature masked as ``...``.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from custseg.storage.data import generate_customers, write_csv_atomic

from conftest import (
    FINGERPRINT,
    PROJECT_ROOT,
    VENV_BIN,
    assert_shows,
    doc_pages,
    make_clone,
    make_run_output,
    masked,
    page_blocks,
    run,
    shown_outputs,
)

#: fence info strings of blocks that hold commands, code or config (markers optional)
INPUT_KINDS = {"bash", "python", "yaml", "mermaid"}
#: fence info strings of blocks that show what a command prints or writes (marker needed)
OUTPUT_KINDS = {"text", "csv", "json", "markdown"}

PAGES = doc_pages()
PAGE_IDS = [str(page.relative_to(PROJECT_ROOT)) for page in PAGES]

#: the header of the Mall Customers schema (conf/data/mall_customers.yaml)
HEADER = "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)"


def run_failing(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a command that must fail with status 1 (a user error), as a user would."""
    done = subprocess.run(
        [str(VENV_BIN / cmd[0]), *cmd[1:]], cwd=cwd, capture_output=True, text=True
    )
    assert done.returncode == 1, done.stdout + done.stderr
    return done


# ------------------------------------------------------------------------ the pages


#: pages maintained apart whose fenced blocks are drawings of the code, without an info string
DRAWINGS_WITHOUT_INFO = {PROJECT_ROOT / "docs" / "architecture.md"}


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_every_fenced_block_says_what_it_holds(page):
    kinds = INPUT_KINDS | OUTPUT_KINDS | ({""} if page in DRAWINGS_WITHOUT_INFO else set())
    unsaid = [
        f"{block.where()}: {block.kind or 'no info string'}"
        for block in page_blocks(page)
        if block.kind != "table" and block.kind not in kinds
    ]
    assert unsaid == [], f"use one of {sorted(INPUT_KINDS | OUTPUT_KINDS)}"


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_every_output_block_names_the_test_that_checks_it(page):
    unchecked = [
        block.where()
        for block in page_blocks(page)
        if block.kind in OUTPUT_KINDS and block.checked_by is None
    ]
    assert unchecked == [], "add <!-- output: tests/test_x.py::test_name --> above each"


def reads_its_examples(test: str) -> bool:
    """Whether the test function ``tests/test_x.py::test_name`` exists and calls
    :func:`conftest.shown_outputs`."""
    path, name = test.split("::")
    source = PROJECT_ROOT / path
    if not source.is_file():
        return False
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            calls = (n for n in ast.walk(node) if isinstance(n, ast.Call))
            return any(getattr(c.func, "id", None) == "shown_outputs" for c in calls)
    return False


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_every_marker_names_a_test_that_reads_its_block(page):
    markers = [
        n + 1
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines())
        if line.startswith("<!-- output:")
    ]
    marked = [block for block in page_blocks(page) if block.checked_by is not None]
    assert len(marked) == len(markers), "a marker must be right above a fenced block or table"
    wrong = [f"{b.where()}: {b.checked_by}" for b in marked if not reads_its_examples(b.checked_by)]
    assert wrong == [], "no such test, or it does not call shown_outputs()"


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of ``page``'s headings (outside fenced blocks), repeats numbered."""
    found: list[str] = []
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"#+ (.*)", line)):
            anchor = github_anchor(heading[1])
            repeats = found.count(anchor) + sum(a.startswith(f"{anchor}-") for a in found)
            found.append(f"{anchor}-{repeats}" if anchor in found else anchor)
    return set(found)


def links(page: Path) -> list[str]:
    """The targets of ``page``'s Markdown links and images, code left out."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_links_between_the_pages_resolve(page):
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or (anchor and anchor not in anchors(file)):
            broken.append(target)
    assert broken == []


def test_the_readme_is_a_front_door_to_every_page():
    readme = PROJECT_ROOT / "README.md"
    assert len(readme.read_text(encoding="utf-8").splitlines()) <= 300
    linked = {(readme.parent / target.partition("#")[0]).resolve() for target in links(readme)}
    pages = set((PROJECT_ROOT / "docs").glob("*.md"))
    assert pages - linked == set()


# ----------------------------------------------------------- the README and the pipeline


def dvc_stages() -> dict[str, dict]:
    """The stages of dvc.yaml with their ``${...}`` variables resolved."""
    text = (PROJECT_ROOT / "dvc.yaml").read_text(encoding="utf-8")
    spec = yaml.safe_load(text)
    for entry in spec.get("vars", []):
        file, key = entry.split(":")
        value = yaml.safe_load((PROJECT_ROOT / file).read_text(encoding="utf-8"))[key]
        text = text.replace(f"${{{key}}}", str(value))
    return yaml.safe_load(text)["stages"]


def outputs(stage: dict) -> set[str]:
    """The files and folders a stage of dvc.yaml writes."""
    entries = [*stage.get("outs", []), *stage.get("metrics", []), *stage.get("plots", [])]
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries}


def test_the_pipeline_diagram_follows_dvc_yaml():
    """The README's Mermaid diagram: a node for each stage of dvc.yaml, a solid arrow into
    each, and every solid arrow into a stage is a dependency of that stage: a file its
    source stage writes (the arrow's label, when it has one, names it), or the path the
    source node names (``data/``, ``catalog/champion.json``)."""
    (diagram,) = shown_outputs()
    stages = dvc_stages()
    labels = dict(re.findall(r'^ *(\w+)[\[(]+"([^"]*)"', diagram, flags=re.MULTILINE))
    arrows = re.findall(r'^ *(\w+) -->(?:\|"([^"]*)"\|)? (\w+)$', diagram, flags=re.MULTILINE)
    assert set(stages) <= set(labels)
    assert set(stages) <= {target for _, _, target in arrows}
    for source, label, target in (a for a in arrows if a[2] in stages):
        deps = {str(dep) for dep in stages[target]["deps"]}
        if source in stages:
            shared = {
                d for d in deps for o in outputs(stages[source]) if o == d or o.startswith(f"{d}/")
            }
            assert shared, f"{target} reads nothing {source} writes"
            named = label.rstrip("/")
            assert not label or any(d == named or d.startswith(f"{named}/") for d in shared)
        else:
            assert labels[source].split()[0].rstrip("/") in deps, f"{target} does not read {source}"


@pytest.mark.slow
def test_make_run_prints_what_the_readme_shows(published):
    """The README's `make run` output, from DVC's first stage on, is what `make run`
    printed on the session's fresh clone (``published``); the fingerprint is masked."""
    (shown,) = shown_outputs()
    printed = make_run_output(published)
    first = shown.splitlines()[0]
    assert first in printed, printed
    assert masked(printed[printed.index(first) :], FINGERPRINT) == shown


@pytest.mark.slow
def test_the_report_summary_shown_is_what_make_run_writes(published):
    """docs/report.md: the beginning of reports/segments.md as `make run` wrote it on the
    session's fresh clone, read from DVC's cache by the hash in the committed dvc.lock (the
    clone's workspace is moved on by tests/test_dvc.py's experiments)."""
    (shown,) = shown_outputs()
    lock = yaml.safe_load((PROJECT_ROOT / "dvc.lock").read_text(encoding="utf-8"))
    outs = {out["path"]: out["md5"] for out in lock["stages"]["report"]["outs"]}
    md5 = outs["reports/segments.md"]
    cached = published / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    assert cached.is_file(), "make run wrote another reports/segments.md than dvc.lock's"
    assert cached.read_text(encoding="utf-8").startswith(shown)


def test_the_segment_sizes_shown_are_the_committed_ones():
    """docs/report.md and docs/rfm.md show the committed segment_sizes.csv of both
    pipelines (tests/test_dvc.py checks that `make run` reproduces them byte for byte)."""
    committed = [
        (PROJECT_ROOT / path).read_text(encoding="utf-8")
        for path in ("reports/segment_sizes.csv", "transactions/reports/segment_sizes.csv")
    ]
    assert sorted(shown_outputs()) == sorted(committed)


def test_the_persona_rule_shown_is_the_first_of_the_conf():
    (shown,) = shown_outputs()
    conf = yaml.safe_load((PROJECT_ROOT / "conf/personas/default.yaml").read_text())
    assert yaml.safe_load(shown) == {"personas": conf["personas"][:1]}


def test_dvc_metrics_show_prints_what_the_docs_show(tmp_path):
    """docs/dvc.md: `dvc metrics show` in a fresh clone, on the committed metrics."""
    (shown,) = shown_outputs()
    assert run(["dvc", "metrics", "show"], make_clone(tmp_path)).stdout == shown


# ----------------------------------------------------------------- data and validation

#: docs/data.md's examples, in page order: (files written, arguments of
#: custseg-validate, its exit status: 0 shows its stdout, 1 its stderr)
VALIDATION_EXAMPLES = {
    "out-of-range": (
        {"data/customers.csv": [HEADER, "1,Male,29,110,85", "2,Female,21,15,181", "3,Male,41,52,46"]},
        [],
        1,
    ),
    "spellings-read": (
        {"data/customers.csv": [HEADER, "1,Male,29,110,85", "2, female ,21,15,81",
                                "3,Male,41,52,46", "4,m,59,88,16", "5,Female,33,60,55"]},
        [],
        0,
    ),
    "semicolons": ({"export.csv": [HEADER.replace(",", ";"), "1;Male;29;110;85"]}, ["data.path=export.csv"], 1),
    # the embedded data's first 40 customers as text, the age of row 30 empty
    "parquet-row": ({"customers.parquet": 30}, ["data.path=customers.parquet"], 1),
}  # fmt: skip


@pytest.mark.parametrize(
    ("index", "files", "args", "status"),
    [(i, *example) for i, example in enumerate(VALIDATION_EXAMPLES.values())],
    ids=VALIDATION_EXAMPLES.keys(),
)
def test_validation_prints_what_the_docs_show(tmp_path, index, files, args, status):
    """docs/data.md: `custseg-validate` on small tables."""
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".parquet"):
            table = generate_customers(40, seed=42).astype(str)
            table.loc[content - 1, "Age"] = ""
            table.to_parquet(path, index=False)
        else:
            path.write_text("\n".join(content) + "\n", encoding="utf-8")
    command = [str(VENV_BIN / "custseg-validate"), *args]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == status, done.stderr
    assert (done.stderr if status else done.stdout) == shown_outputs()[index]


@pytest.mark.parametrize(
    ("index", "args", "status"),
    [(0, ["transactions.order_id=null"], 0), (1, [], 1)],
    ids=["read", "order-id-missing"],
)
def test_custseg_rfm_prints_what_the_docs_show(tmp_path, index, args, status):
    """docs/rfm.md: `custseg-rfm` on a two-line log without an order id column."""
    log = tmp_path / "data" / "transactions.csv"
    log.parent.mkdir()
    log.write_text("CustomerID,Date,Amount\nC1,2026-01-05,19.99\nC2,2026-02-11,5.00\n")
    command = [str(VENV_BIN / "custseg-rfm"), "pipeline=transactions", *args]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == status, done.stderr
    assert (done.stderr if status else done.stdout) == shown_outputs()[index]


def test_a_key_typo_is_named_with_the_close_keys(tmp_path):
    """docs/troubleshooting.md: `custseg-predict predict.inptu=new.csv`."""
    done = run_failing(["custseg-predict", "predict.inptu=new.csv"], tmp_path)
    assert shown_outputs() == [done.stderr]


# ------------------------------------------------------------------ scoring and REST


def first_customers(published: Path, directory: Path, *more: str) -> Path:
    """``head -4 data/customers.csv > new.csv`` in ``directory``, plus the ``more`` lines."""
    head = (published / "data" / "customers.csv").read_text(encoding="utf-8").splitlines()[:4]
    new = directory / "new.csv"
    new.write_text("\n".join([*head, *more]) + "\n", encoding="utf-8")
    return new


@pytest.mark.slow
def test_the_scoring_example_is_what_scoring_gives(published, tmp_path):
    """docs/registry-and-scoring.md: the first three customers of the embedded data scored
    by the champion of the session's fresh clone, written to a temporary folder (shown as
    if run in the project root: the folder is dropped from the printed paths)."""
    new = first_customers(published, tmp_path)
    out = tmp_path / "new.scored.csv"
    done = run(["custseg-predict", f"predict.input={new}", f"predict.output={out}"], published)
    printed = done.stdout.replace(f"{tmp_path}/", "")
    assert shown_outputs() == [printed, out.read_text(encoding="utf-8")]


@pytest.mark.slow
def test_bad_rows_are_refused_or_set_aside_as_the_docs_show(published, tmp_path):
    """docs/registry-and-scoring.md: the same customers and two more, one impossible,
    scored without and with ``predict.rejects`` (temporary folder dropped as above)."""
    new = first_customers(published, tmp_path, "4,Robot,-5,60,50", "5,Female,35,70,40")
    out, rejects = tmp_path / "new.scored.csv", tmp_path / "new.rejects.csv"
    score = ["custseg-predict", f"predict.input={new}", f"predict.output={out}"]
    refused = run_failing(score, published)
    assert not out.exists()
    done = run([*score, f"predict.rejects={rejects}"], published)
    printed = [text.replace(f"{tmp_path}/", "") for text in (refused.stderr, done.stdout)]
    assert shown_outputs() == [*printed, rejects.read_text(encoding="utf-8")]


@pytest.mark.slow
def test_the_monitoring_demo_is_what_monitoring_gives(published, tmp_path):
    """docs/monitoring.md: a batch of generated customers with incomes one standard
    deviation higher, judged against the champion of the session's fresh clone (the
    temporary folder dropped from the printed paths)."""
    drifted = tmp_path / "drifted.csv"
    generate = ["custseg", "generate", "--rows", "500", "--seed", "3", "--drift", "income=+1sd"]
    made = run([*generate, "--out", str(drifted)], published)
    done = run(["custseg-monitor", f"monitor.input={drifted}"], published)
    printed = (made.stdout + done.stdout).replace(f"{tmp_path}/", "")
    readme, page = shown_outputs()
    assert page == printed
    assert_shows(printed, readme)  # the README shows the verdict and its first reasons
    report = json.loads((published / "monitoring" / "drifted.json").read_text())
    assert report["verdict"] == "resegment"


async def post(app, path: str, body: bytes) -> tuple[int, bytes]:
    """POST ``body`` (JSON) to the ASGI ``app`` as a server would; (status, body)."""
    responded = asyncio.Event()
    request = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []

    async def receive() -> dict:
        if request:
            return request.pop()
        await responded.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            responded.set()

    headers = [(b"host", b"127.0.0.1:5001"), (b"content-type", b"application/json")]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 5001),
    }  # fmt: skip
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.slow
def test_the_rest_example_is_what_the_served_champion_answers(published, monkeypatch):
    """docs/registry-and-scoring.md: the answers to the page's two curl requests (their
    -d payloads, read from the page). `mlflow models serve` runs MLflow's scoring app
    under uvicorn; this calls the same app (``scoring_server.init``) in-process over
    ASGI with the champion of the session's fresh clone, so no server, port or uvicorn
    is started; the bodies are what curl prints."""
    from mlflow import MlflowClient
    from mlflow.environment_variables import _MLFLOW_IS_IN_SERVING_ENVIRONMENT
    from mlflow.pyfunc import load_model, scoring_server

    monkeypatch.delenv(_MLFLOW_IS_IN_SERVING_ENVIRONMENT.name, raising=False)  # init sets it
    page = (PROJECT_ROOT / "docs" / "registry-and-scoring.md").read_text(encoding="utf-8")
    payloads = re.findall(r"-d '(\{.*?\})'", page)
    client = MlflowClient(tracking_uri=f"sqlite:///{published / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("customer-segmentation", "champion")
    model = load_model(client.get_model_version_download_uri(champion.name, champion.version))
    app = scoring_server.init(model)
    answers = [asyncio.run(post(app, "/invocations", p.encode())) for p in payloads]
    assert [status for status, _ in answers] == [200, 400]
    assert shown_outputs() == [f"{body.decode()}\n" for _, body in answers]


# ---------------------------------------------------------------------- troubleshooting


def test_a_bad_config_value_is_named(tmp_path):
    (shown,) = shown_outputs()
    assert run_failing(["custseg-validate", "preprocess.scaler=zscore"], tmp_path).stderr == shown


def test_a_missing_input_names_the_stage_to_run(tmp_path):
    """docs/troubleshooting.md: `custseg-select` where the data is but no sweep ran."""
    (shown,) = shown_outputs()
    write_csv_atomic(generate_customers(200, seed=42), tmp_path / "data" / "customers.csv")
    assert run_failing(["custseg-select"], tmp_path).stderr == shown


# -------------------------------------------------------------------- speed and scale


def table_rows(table: str) -> list[list[str]]:
    """The body rows of a Markdown table, as lists of cells (header and rule left out)."""
    rows = [line.strip("|").split("|") for line in table.splitlines()[2:]]
    return [[cell.strip() for cell in row] for row in rows]


def bench(name: str) -> dict:
    return json.loads((PROJECT_ROOT / "bench" / name).read_text(encoding="utf-8"))


def mib(value: float) -> str:
    return f"{value:,.0f}"


def expected_speed_tables() -> list[list[list[str]]]:
    """The four tables of docs/speed.md, from bench/results*.json, without their labels."""
    full, scale, seed = (
        bench("results.json"),
        bench("results-scale.json"),
        bench("results-seed.json"),
    )
    tutorial, fresh, force = (
        full["seed"][k] for k in ("tutorial", "dvc_repro_fresh", "dvc_repro_force")
    )
    pipeline = [
        [f"{tutorial['seconds']:.1f}", "36", f"{tutorial['per_run']:.2f}", mib(tutorial["peak_tree_mib"])],
        *(
            [f"{r['seconds']:.1f}", str(r["runs"]), f"{r['per_run']:.2f} ({r['speedup_per_run']:.1f}x)",
             mib(r["peak_tree_mib"])]
            for r in (fresh, force)
        ),
        [f"{full['mall']['seconds']:.1f}", "", "", mib(full["mall"]["peak_tree_mib"])],
        *([f"{r['seconds']:.1f}", str(r["runs"]), "", mib(r["peak_tree_mib"])] for r in full["scale"]),
    ]  # fmt: skip
    by_stage = [
        [f"{r['seconds']:.1f}", f"{r['seconds'] / r['rows'] * 1e6:.1f}", mib(r["peak_tree_mib"]),
         ", ".join(f"{s:.1f}" for s in r["stage_seconds"].values())]
        for r in scale["scale"]
    ]  # fmt: skip
    s = seed["seed"]
    tutorial, fresh, force = s["tutorial"], s["dvc_repro_fresh"], s["dvc_repro_force"]
    totals = [
        [f"{tutorial['seconds']:.1f} ({tutorial['per_run']:.2f} s / run)"],
        [f"{fresh['seconds']:.1f} ({fresh['per_run']:.2f} s / run, {fresh['speedup_per_run']:.1f}x)"],
        [f"{force['seconds']:.1f} ({force['per_run']:.2f} s / run, {force['speedup_per_run']:.1f}x)"],
        [f"{force['budget_for_12x']:.1f}"],
    ]  # fmt: skip
    stages = force["stages"]
    spans = [
        [f"{stages['dvc_start']:.1f}", ""],
        *([f"{stages[n]['span']:.1f}", f"{stages[n]['startup']:.1f}"] for n in stages if n[:3] != "dvc"),
        [f"{stages['dvc_end']:.1f}", ""],
    ]  # fmt: skip
    return [pipeline, by_stage, totals, spans]


def test_the_speed_tables_are_the_recorded_benchmarks():
    """docs/speed.md's tables of measured runs are bench/results*.json, rounded."""
    tables = [table_rows(table) for table in shown_outputs()]
    assert [[row[1:] for row in rows] for rows in tables] == expected_speed_tables()
    force = bench("results-seed.json")["seed"]["dvc_repro_force"]
    runs = ", ".join(f"{s:.1f}" for s in force["seconds_of_each_run"])
    assert tables[2][2][0].endswith(f"median of {runs}")


def test_the_engine_table_is_the_recorded_benchmark():
    """docs/spark.md's table of Spark against scikit-learn is bench/results-engines.json."""
    (table,) = shown_outputs()
    expected = []
    for r in bench("results-engines.json")["engines"]:
        for engine in ("sklearn", "spark"):
            e = r[engine]
            ratio = f" ({e['seconds'] / r['sklearn']['seconds']:.1f}x)" if engine == "spark" else ""
            seconds = f"{e['seconds']:.1f}{ratio}"
            expected.append(
                [f"{r['rows']:,}", engine, seconds, mib(e["peak_tree_mib"]), str(e["k"])]
            )
    assert table_rows(table) == expected


def test_the_monitoring_table_is_the_recorded_benchmark():
    """docs/monitoring.md's table of custseg-monitor's speed is bench/results-monitor.json."""
    (table,) = shown_outputs()
    expected = [
        [f"{r['rows']:,}", f"{r['batch_mib']:.0f}", f"{r['seconds']:.1f}",
         mib(r["peak_tree_mib"]), r["verdict"]]
        for r in bench("results-monitor.json")["monitor"]["batches"]
    ]  # fmt: skip
    assert table_rows(table) == expected


def test_bench_micro_prints_what_the_speed_page_shows(capsys, tmp_path, monkeypatch):
    """docs/speed.md: what `make bench-micro` prints, numbers masked on both sides (they
    are measurements). Checked with bench/benchmarks.py's own functions at a small size
    (one model per mode, 2,000 rows) in this process, with MLflow replaced by no-ops: what
    is checked is the printed text, not the timing of a model's logging."""
    import contextlib
    import importlib.util
    from types import SimpleNamespace

    path = PROJECT_ROOT / "bench" / "benchmarks.py"
    spec = importlib.util.spec_from_file_location("benchmarks", path)
    benchmarks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmarks)
    nothing = SimpleNamespace(
        set_tracking_uri=lambda uri: None,
        set_experiment=lambda name: None,
        start_run=contextlib.nullcontext,
    )
    monkeypatch.setattr(benchmarks, "mlflow", nothing)
    monkeypatch.setattr(benchmarks, "log_segment_model", lambda model, **kwargs: None)
    settings = benchmarks.compose_settings()
    monkeypatch.chdir(tmp_path)
    benchmarks.bench_model_logging(settings, 1)
    print()
    benchmarks.bench_silhouette(settings, 2000, 500)

    def shape(text: str) -> list[str]:
        return [" ".join(re.sub(r"\d[\d,.]*", "N", line).split()) for line in text.splitlines()]

    (shown,) = shown_outputs()
    assert shape(capsys.readouterr().out) == shape(shown)
