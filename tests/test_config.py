from pathlib import Path

import pytest

from custseg.config import ConfigError, to_settings

from conftest import CONF_DIR, compose_config, compose_settings

GROUP_OPTIONS = sorted(
    (group.name, option.stem)
    for group in CONF_DIR.iterdir()
    if group.is_dir()
    for option in group.glob("*.yaml")
)


#: options of the RFM pipeline's tables (conf/pipeline/transactions.yaml): composed in it
RFM_OPTIONS = {("data", "rfm"), ("transactions", "log"), ("pipeline", "transactions")}
#: engine=spark fits numeric feature sets only: its sweep leaves out `all` (gender)
NUMERIC_SWEEP = "sweep.feature_sets=[income_spending,age_spending,age_income_spending]"
GROUP_EXTRA = {("engine", "spark"): [NUMERIC_SWEEP]}


@pytest.mark.parametrize("group, option", GROUP_OPTIONS)
def test_every_group_option_composes_and_validates(group, option, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5055")  # tracking=server's
    rfm = (group, option) in RFM_OPTIONS or option.startswith("rfm_")
    pipeline = ["pipeline=transactions"] if rfm else []
    extra = GROUP_EXTRA.get((group, option), [])
    settings = to_settings(compose_config([*pipeline, f"{group}={option}", *extra]))
    expected = "transaction-segmentation" if rfm else "customer-segmentation"
    assert settings.tracking.experiment_name == expected
    assert (settings.transactions is not None) == rfm


def test_the_transactions_pipeline_swaps_data_features_personas_and_names():
    settings = compose_settings(["pipeline=transactions"])
    assert settings.pipeline == "transactions"
    assert settings.transactions.as_of == "2026-06-30"
    assert settings.data.path == "rfm/customers.csv"
    assert [fs.name for fs in settings.swept_feature_sets()] == [
        "rfm_raw",
        "rfm_log",
        "rfm_quantile",
        "rfm_scores",
    ]
    assert settings.features.transforms["monetary_total"] == "quantile"
    assert settings.personas.attributes["recency_days"].better == "lower"
    assert settings.tracking.registered_model_name == "transaction-segmentation"
    mall = compose_settings()
    assert (mall.pipeline, mall.transactions, mall.data.path) == (
        "mall",
        None,
        "data/customers.csv",
    )


@pytest.mark.parametrize(
    "override, message",
    [
        ("transactions.as_of=yesterday", "transactions.as_of='yesterday' is not a date"),
        ("transactions.as_of=2026-02-30", "is not a date"),
        ("transactions.date_format=YYYY-MM-DD", "has no strftime code"),
    ],
)
def test_bad_transaction_settings_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        compose_settings(["pipeline=transactions", override])


@pytest.mark.parametrize("selected", [None, "local"])
def test_the_local_store_is_the_default_whatever_mlflow_tracking_uri_says(selected, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5055")
    if selected:
        monkeypatch.setenv("CUSTSEG_TRACKING", selected)
    else:
        monkeypatch.delenv("CUSTSEG_TRACKING", raising=False)
    settings = compose_settings()
    assert settings.tracking.tracking_uri == "sqlite:///mlflow.db"
    assert settings.tracking.artifact_location == "mlruns"
    assert settings.mlflow_ui == "http://127.0.0.1:5000"  # make ui's


def test_custseg_tracking_server_takes_the_server_from_the_environment(monkeypatch):
    monkeypatch.setenv("CUSTSEG_TRACKING", "server")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ConfigError, match="tracking=server needs MLFLOW_TRACKING_URI"):
        compose_settings()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://mlflow.example.com")
    settings = compose_settings()
    assert settings.tracking.tracking_uri == "https://mlflow.example.com"
    assert settings.tracking.artifact_location is None  # the server's (proxied artifacts)
    assert settings.mlflow_ui == "https://mlflow.example.com"  # the server serves the UI
    explicit = compose_settings(["report.mlflow_ui=http://ui.example.com"])
    assert explicit.mlflow_ui == "http://ui.example.com"


def test_defaults():
    s = compose_settings()
    assert s.features.name == "income_spending"
    assert s.features.numeric == ["annual_income", "spending_score"]
    assert [fs.name for fs in s.swept_feature_sets()] == [
        "income_spending", "age_spending", "age_income_spending", "all",
    ]  # fmt: skip
    assert s.sweep.ks == list(range(2, 11))
    assert len(s.swept_feature_sets()) * len(s.sweep.ks) == 36
    assert s.selection.method == "consensus"
    assert s.selection.trust.resamples == 20 and s.selection.trust.sample_size == 2000
    assert s.model.n_init == 10 and s.model.algorithm == "lloyd"
    assert s.tracking.tracking_uri == "sqlite:///mlflow.db"
    assert s.data.id_column == "customer_id"
    assert s.data.columns["annual_income"].source == "Annual Income (k$)"


def test_feature_set_all_has_gender_one_hot():
    fs = {f.name: f for f in compose_settings().swept_feature_sets()}["all"]
    assert fs.numeric == ["age", "annual_income", "spending_score"]
    assert fs.categorical == ["gender"]


def test_command_line_overrides():
    s = compose_settings(
        [
            "features=age_income_spending",
            "sweep.k_max=12",
            "model.n_init=20",
            "preprocess.scaler=minmax",
        ]
    )
    assert s.features.name == "age_income_spending"
    assert s.sweep.ks[-1] == 12 and s.model.n_init == 20 and s.preprocess.scaler == "minmax"


def test_final_feature_set_joins_a_narrower_sweep():
    s = compose_settings(["features=all", "sweep.feature_sets=[age_spending]"])
    assert [fs.name for fs in s.swept_feature_sets()] == ["age_spending", "all"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("preprocess.scaler=zscore", "preprocess.scaler='zscore'"),
        ("selection.method=knee", "selection.method='knee'"),
        ("selection.trust.resampling=jackknife", "selection.trust.resampling='jackknife'"),
        ("selection.trust.subsample_fraction=1.5", "selection.trust.subsample_fraction=1.5"),
        ("selection.trust.resamples=-1", "selection.trust.resamples and references"),
        ("selection.trust.sample_size=1", "selection.trust.sample_size=1"),
        ("selection.trust.n_init=0", "selection.trust.n_init=0"),
        ("selection.unstable_jaccard=2", "selection.unstable_jaccard"),
        ("selection.seed_checks=-1", "selection.seed_checks"),
        ("preprocess.categorical_weight=-0.5", "preprocess.categorical_weight=-0.5"),
        ("sweep.k_min=1", "sweep.k_min"),
        ("sweep.k_max=1", "sweep.k_max"),
        ("model.n_init=0", "model.n_init"),
        ("model.n_init=ten", "n_init"),
        ("sweep.feature_sets=[nope]", "unknown feature set(s) ['nope']"),
        ("sweep.n_jobs=0", "sweep.n_jobs=0"),
        ("sweep.n_jobs=-1", "sweep.n_jobs=-1"),
        ("engine.name=flink", "engine.name='flink'"),
        # the RFM sweep has transformed sets: the Spark engine names the first
        ("engine=spark pipeline=transactions", "feature set 'rfm_log' has transforms"),
    ],
)
def test_bad_values_give_a_clear_error(override, message):
    with pytest.raises(ConfigError) as excinfo:
        compose_settings(override.split())
    assert message in str(excinfo.value)


def test_feature_on_unknown_column_is_rejected():
    with pytest.raises(ConfigError, match=r"uses \['height'\]"):
        compose_settings(["features.numeric=[age,height]"])


def test_unknown_key_is_rejected():
    cfg = compose_config()
    cfg_dict = {**cfg, "sweep": {**cfg.sweep, "k_maxx": 3}}
    with pytest.raises(ConfigError, match="k_maxx"):
        to_settings(cfg_dict)


def test_conf_dir_is_the_one_entry_points_use():
    from custseg.config import CONF_DIR as PACKAGE_CONF_DIR

    assert PACKAGE_CONF_DIR == CONF_DIR


def test_a_zero_categorical_weight_needs_a_numeric_column():
    """Weight 0 ignores categorical columns: a feature set of only those has nothing left."""
    only_gender = ["features.numeric=[]", "features.categorical=[gender]", "sweep.feature_sets=[]"]
    compose_settings(only_gender)  # fine with the default weight
    with pytest.raises(ConfigError, match="nothing to cluster in feature set"):
        compose_settings([*only_gender, "preprocess.categorical_weight=0"])


def test_no_config_value_is_instantiated_as_code():
    """Configs are data: no Hydra ``_target_`` in conf/ and no ``instantiate`` in the code,
    so an edited or overridden value can never import and run an arbitrary object."""
    root = Path(__file__).resolve().parents[1]
    conf = [p for p in (root / "conf").rglob("*.yaml") if "_target_" in p.read_text()]
    code = [
        p for p in (root / "src").rglob("*.py") if "instantiate(" in p.read_text(encoding="utf-8")
    ]
    assert conf == [] and code == []


def compose_with_feature_file(tmp_path: Path, text: str, overrides: list[str]):
    """Compose a copy of conf/ with one more feature set file, ``features/extra.yaml``."""
    import shutil

    from hydra import compose, initialize_config_dir

    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    (conf / "features" / "extra.yaml").write_text(text, encoding="utf-8")
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return to_settings(compose(config_name="config", overrides=overrides))


EXTRA = "name: extra\nnumeric: [annual_income, spending_score]\ncategorical: []\n"


def test_a_feature_set_file_may_transform_its_numeric_columns(tmp_path):
    text = EXTRA + "transforms: {annual_income: log1p, spending_score: quantile}\n"
    settings = compose_with_feature_file(tmp_path, text, ["features=extra"])
    assert settings.features.transforms == {"annual_income": "log1p", "spending_score": "quantile"}
    assert settings.features.transforms_label == "annual_income=log1p,spending_score=quantile"
    # without the key, no transforms: every shipped feature set
    assert all(fs.transforms == {} for fs in settings.feature_catalog.values())


@pytest.mark.parametrize(
    ("transforms", "message"),
    [
        (
            "{annual_income: logg}",
            "feature set 'extra': transforms.annual_income='logg'; choose one of "
            "('none', 'log1p', 'quantile', 'rfm_score')",
        ),
        (
            "{age: log1p}",
            "feature set 'extra': transforms.age: 'age' is not a numeric column of the set "
            "['annual_income', 'spending_score']",
        ),
    ],
)
def test_a_bad_transform_in_a_feature_set_file_gives_a_clear_error(tmp_path, transforms, message):
    text = EXTRA + f"transforms: {transforms}\n"
    with pytest.raises(ConfigError) as excinfo:
        compose_with_feature_file(tmp_path, text, ["features=extra"])
    assert message in str(excinfo.value)


def test_a_swept_feature_set_transform_is_checked_from_the_command_line():
    with pytest.raises(ConfigError, match=r"feature set 'age_spending': transforms.age='cube'"):
        compose_settings(
            ["+feature_catalog.age_spending.transforms={age: cube}",
             "sweep.feature_sets=[age_spending]"]
        )  # fmt: skip


def test_the_engine_is_sklearn_by_default_and_spark_composes():
    assert compose_settings().engine.name == "sklearn"
    engine = compose_settings(["engine=spark", NUMERIC_SWEEP]).engine
    assert (engine.name, engine.master, engine.driver_memory) == ("spark", "local[*]", "4g")
    assert engine.partitions == 4 and engine.conf == {}
    cluster = compose_settings(
        ["engine=spark", NUMERIC_SWEEP, "engine.master=spark://head:7077", "engine.partitions=64"]
    ).engine
    assert (cluster.master, cluster.partitions) == ("spark://head:7077", 64)


@pytest.mark.parametrize(
    "override, message",
    [
        ("engine.driver_memory=lots", "engine.driver_memory='lots'"),
        ("engine.partitions=0", "engine.partitions=0"),
        ("engine.master=' '", "engine.master is empty"),
        ("+engine.conf={spark.driver.memory: 1g}", "set engine.driver_memory instead"),
        ("model=kprototypes", "engine=spark fits model=kmeans only"),
        ("preprocess.scaler=minmax", "preprocess.scaler=standard only"),
        ("+feature_catalog.age_spending.transforms={age: log1p}", "'age_spending' has transforms"),
    ],
)
def test_bad_spark_engine_values_are_named(override, message):
    with pytest.raises(ConfigError) as excinfo:
        compose_settings(["engine=spark", NUMERIC_SWEEP, override])
    assert message in str(excinfo.value)


def test_only_a_spark_sweep_records_its_engine_with_the_models():
    assert "engine" not in compose_settings().fitted_with("sha")  # sklearn records unchanged
    spark = compose_settings(["engine=spark", NUMERIC_SWEEP]).fitted_with("sha")
    assert spark["engine"] == {"name": "spark", "partitions": 4, "driver_sample_size": 10000}


#: config dataclasses whose code defaults are kept on purpose: the CSV dialect and paths
#: of DataConfig are also the reader's defaults for transaction logs and generated tables;
#: a column of a user's schema is numeric unless its ColumnSpec says otherwise
CODE_DEFAULTS = {"DataConfig", "ColumnSpec"}


def _stated_twice(cls: type, node: object, prefix: str) -> list[str]:
    """Keys that ``node`` (composed conf) states and ``cls`` (a config.py dataclass, and
    those nested in it) also gives a value (other than None or empty)."""
    import dataclasses
    import typing

    from custseg import config

    found = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not isinstance(node, dict) or f.name not in node:
            continue
        nested = [
            t
            for t in (hints[f.name], *typing.get_args(hints[f.name]))
            if dataclasses.is_dataclass(t)
        ]
        args = typing.get_args(hints[f.name])
        mapping = typing.get_origin(hints[f.name]) is dict and dataclasses.is_dataclass(args[1])
        if mapping and args[1].__module__ == config.__name__:
            for key, value in node[f.name].items():  # a mapping of config dataclasses
                found += _stated_twice(args[1], value, f"{prefix}{f.name}.{key}.")
        elif nested and nested[0].__module__ == config.__name__:
            found += _stated_twice(nested[0], node[f.name], f"{prefix}{f.name}.")
        elif cls.__name__ not in CODE_DEFAULTS:
            # None, or an empty list or mapping, says "nothing", not a value
            default = (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            )
            if default is not dataclasses.MISSING and default not in (None, [], {}, "???"):
                found.append(f"{prefix}{f.name}")
    return found


@pytest.mark.parametrize(
    "overrides", [[], ["pipeline=transactions"], ["engine=spark"], ["tracking=server"]]
)
def test_a_default_is_stated_once_in_conf_not_again_in_code(overrides, monkeypatch):
    """What conf/ states, config.py's dataclasses only type (no second default to drift)."""
    from omegaconf import OmegaConf

    from custseg.config import Settings

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    composed = OmegaConf.to_container(compose_config(overrides), resolve=True)
    assert _stated_twice(Settings, composed, "") == []


def test_a_missing_key_names_itself():
    """By hand: a conf without sweep.k_max is refused with the key's name."""
    cfg = compose_config()
    del cfg.sweep.k_max
    with pytest.raises(ConfigError, match="k_max"):
        to_settings(cfg)


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (["predict.inptu=x.csv"], "unknown key 'predict.inptu': did you mean predict.input?"),
        (["predikt.input=x.csv"], "unknown key 'predikt.input': did you mean predict?"),
        (["engine=spark", "engine.partitons=4"], "did you mean engine.partitions?"),
        (["data.path.x=1"], "unknown key 'data.path.x': data.path is a value, not a group"),
        (["pipeline=transactions", "transactions.as_of=2026-01-01"], None),
        (["predict.input=x.csv", "+extra.key=1", "hydra.run.dir=.", "--cfg", "job"], None),
    ],
)
def test_a_command_line_key_the_config_lacks_is_named_with_the_close_ones(arguments, problem):
    from custseg.config import unknown_key

    found = unknown_key(arguments)
    assert found == problem if problem is None else problem in found


def test_a_forced_k_outside_the_swept_range_is_refused():
    with pytest.raises(ConfigError, match=r"selection\.k=12 is outside the swept k = 2\.\.10"):
        compose_settings(["selection.k=12"])
    assert compose_settings(["selection.k=4"]).selection.k == 4
