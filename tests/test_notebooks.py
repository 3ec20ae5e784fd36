"""The notebooks: stored clean, parameters that match the configs, and executed end to end through
papermill by `tinysm reproduce` on params/smoke with a small synthetic set (the files they write)."""
from __future__ import annotations

import json

import nbformat
import papermill
import pytest
import yaml

from tinysm.cli import main
from tinysm.experiments.config import (
    ExperimentNotebook, ResultsConfig, SizeDistributionConfig, load_experiment_config,
)
from tinysm.paths import repo_root

NOTEBOOKS = sorted((repo_root() / "notebooks").glob("*.ipynb"))
# One experiment per detector, between them both Scale Match variants (reference §4, §5).
SMOKE_EXPERIMENTS = ("exp4.0", "exp5.2")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_source_notebooks_have_no_outputs_and_use_the_stock_kernel(path):
    book = nbformat.read(path, as_version=4)
    for index, cell in enumerate(book.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} cell {index} has outputs"
    assert book.metadata.kernelspec.name == "python3"
    assert "argv" not in book.metadata.kernelspec  # never an interpreter path baked in
    tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell tagged 'parameters'"


@pytest.mark.parametrize("name, config_class", [("experiment.ipynb", ExperimentNotebook),
                                                ("results.ipynb", ResultsConfig),
                                                ("size_distribution.ipynb", SizeDistributionConfig)])
def test_parameters_cell_declares_exactly_the_configs_keys(name, config_class):
    declared = papermill.inspect_notebook(str(repo_root() / "notebooks" / name))
    assert list(declared) == list(config_class.__dataclass_fields__)


@pytest.mark.slow
@pytest.mark.parametrize("parameters", [{"learning_rate": 0.1}, {"overrides": {"learning_rate": 0.1}}],
                         ids=["notebook parameter", "override"])
def test_unknown_parameter_fails_in_the_first_cell_before_any_work(tmp_path, parameters):
    output = tmp_path / "out.ipynb"
    overrides = {"runs_dir": str(tmp_path / "runs"), **parameters.get("overrides", {})}
    with pytest.raises(papermill.PapermillExecutionError, match=r"unknown key\(s\) \['learning_rate'\]"):
        papermill.execute_notebook(str(repo_root() / "notebooks" / "experiment.ipynb"), str(output),
                                   parameters={**parameters, "overrides": overrides},
                                   kernel_name="python3", progress_bar=False)
    assert not (tmp_path / "runs").exists()
    cells = nbformat.read(output, as_version=4).cells
    injected = next(i for i, c in enumerate(cells) if "injected-parameters" in c.metadata.get("tags", []))
    code_after = [c for c in cells[injected + 1:] if c.cell_type == "code"]
    assert [o.output_type for o in code_after[0].outputs] == ["error"]  # the validating cell
    assert all(c.execution_count is None for c in code_after[1:])  # nothing ran after it


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """`tinysm reproduce` on params/smoke (two experiments) against a small synthetic set."""
    from tinysm.data.synth import CocoSceneConfig, TinyPersonSceneConfig, generate

    root = tmp_path_factory.mktemp("smoke")
    # Frames smaller than one tile and small COCO frames keep each step to seconds.
    generate(root / "data" / "synthetic", seed=0, train=4, test=2, coco_train=6, coco_val=1, workers=1,
             tiny_config=TinyPersonSceneConfig(frame_sizes=((320, 256),), persons=(8, 16)),
             coco_config=CocoSceneConfig(frame_sizes=((160, 120),)))
    params = root / "params"
    params.mkdir()
    base = yaml.safe_load((repo_root() / "params" / "smoke" / "base.yaml").read_text())
    base.update(data_root=str(root / "data" / "synthetic"), runs_dir=str(root / "runs"))
    (params / "base.yaml").write_text(yaml.safe_dump(base))
    for name in SMOKE_EXPERIMENTS:
        (params / f"{name}.yaml").write_text((repo_root() / "params" / "smoke" / f"{name}.yaml").read_text())
    assert main(["reproduce", "--params", str(params), "--data", str(root / "data"),
                 "--figures", str(root / "figures")]) == 0
    return root


@pytest.mark.slow
def test_smoke_reproduce_writes_every_record(smoke_run):
    root = smoke_run
    runs = root / "runs"
    for name in ("size_distribution.ipynb", "results.ipynb", *(f"{e}/experiment.ipynb" for e in SMOKE_EXPERIMENTS)):
        executed = nbformat.read(runs / name, as_version=4)
        assert executed.metadata.papermill.exception is None, name
    for name in SMOKE_EXPERIMENTS:
        run = runs / name
        record = json.loads((run / "metrics.json").read_text())
        assert record["experiment"] == name and record["data_root"].endswith("synthetic")
        metrics = record["metrics"]
        for key in ("AP50_tiny", "AP25_tiny", "AP75_tiny", "AP50_tiny1", "MR50_tiny", "AP50_reasonable"):
            assert key in metrics and (metrics[key] == -1 or 0 <= metrics[key] <= 100), key
        detections = json.loads((run / "results.json").read_text())
        assert all({"image_id", "bbox", "score", "category_id"} <= set(d) for d in detections)
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["experiment"] == name
        for stage in ("pretrain", "finetune"):  # one checkpoint per finished stage
            assert (run / stage / "model_final.pt").stat().st_size > 0
            assert sorted(p.name for p in (run / stage).glob("*.pt")) == ["model_final.pt"]
        for figure in ("training_tiles", "scale_matched_images", "training_curves", "pr_curves", "mr_fppi",
                       "detections"):
            assert (run / "figures" / f"{figure}.png").stat().st_size > 10_000, figure


@pytest.mark.slow
def test_smoke_reproduce_writes_the_figures_and_the_study(smoke_run):
    root = smoke_run
    figures = root / "figures"
    assert (figures / "size_distribution.png").stat().st_size > 10_000
    # Synthetic runs: the CPU study (issue 13), never ours against the published numbers.
    assert (figures / "cpu_study.png").stat().st_size > 10_000
    assert not (figures / "results_table.md").exists()
    rows = [line.split(",") for line in (figures / "cpu_study.csv").read_text().splitlines()[1:]]
    assert len(rows) == 2 * 4  # both detectors × none, plain, sm, msm
    finished = {(row[0], row[1]) for row in rows if row[2] != "0"}
    assert finished == {("faster_fpn", "sm"), ("adaptive_retinanet", "msm")}  # exp4.0, exp5.2
    assert (figures / "cpu_study.md").read_text().startswith("| detector | arm | seeds |")


@pytest.mark.slow
def test_run_experiment_without_the_notebook_gives_the_notebooks_metrics(smoke_run):
    from tinysm.experiments.run import run_experiment

    root = smoke_run
    name = SMOKE_EXPERIMENTS[0]
    config = load_experiment_config(root / "params" / f"{name}.yaml", {"runs_dir": str(root / "api-runs")})
    metrics = run_experiment(config)
    # Same params, same seed, CPU: the notebook-free path must reproduce the notebook's run exactly.
    assert metrics == json.loads((root / "runs" / name / "metrics.json").read_text())["metrics"]
    assert json.loads((root / "api-runs" / name / "metrics.json").read_text())["metrics"] == metrics
    with pytest.raises(FileExistsError, match="holds a finished run"):
        run_experiment(config)


@pytest.mark.slow
def test_a_registered_size_matching_method_runs_end_to_end(smoke_run):
    """`pretrain: gaussian` needs nothing but its METHODS entry: pre-training, fine-tuning, scoring."""
    from tinysm.experiments.run import run_experiment

    root = smoke_run
    config = load_experiment_config(root / "params" / "exp4.0.yaml",
                                    {"pretrain": "gaussian", "runs_dir": str(root / "gaussian-runs")})
    metrics = run_experiment(config)
    assert 0 <= metrics["AP50_tiny"] <= 100
    stage = yaml.safe_load((root / "gaussian-runs" / "exp4.0" / "pretrain" / "config.yaml").read_text())
    assert stage["scale_match"] == "gaussian"
