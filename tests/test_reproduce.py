"""The reproduce driver: which notebooks run, in which order, with which parameters; skip, force, stop."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tinysm.cli import main
from tinysm.config import ConfigError
from tinysm.experiments.reproduce import NotebookFailed, load_experiments, plan_jobs, run_jobs


def write_params(folder: Path, runs_dir: Path, names=("exp5.2", "exp1.2", "exp4.0"), **extra) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        values = {"experiment": name, "runs_dir": str(runs_dir), "epochs": 1, **extra}
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(values))
    return folder


class RecordingExecutor:
    """Stands in for papermill: records calls, fails on request, writes the notebook it was given."""

    def __init__(self, fail_on: str | None = None):
        self.calls: list[tuple[Path, Path, dict]] = []
        self.fail_on = fail_on

    def __call__(self, notebook: Path, output: Path, parameters: dict) -> None:
        self.calls.append((notebook, output, parameters))
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text("executed")
        if self.fail_on and self.fail_on in str(output):
            raise RuntimeError("cell 7 raised")


def test_jobs_run_in_the_papers_order_between_sizes_and_results(tmp_path):
    configs = load_experiments(write_params(tmp_path / "params", tmp_path / "runs"))
    jobs = plan_jobs(configs, tmp_path / "params", tmp_path / "figures", force=False, size_parameters={"bins": 100})
    assert [j.name for j in jobs] == ["size_distribution", "exp1.2", "exp4.0", "exp5.2", "results"]
    assert [j.notebook.name for j in jobs] == ["size_distribution.ipynb"] + ["experiment.ipynb"] * 3 + [
        "results.ipynb"]
    assert jobs[0].parameters == {"bins": 100, "output_dir": str(tmp_path / "figures")}
    assert jobs[1].output == tmp_path / "runs" / "exp1.2" / "experiment.ipynb"
    assert jobs[1].parameters == {"params": str(tmp_path / "params" / "exp1.2.yaml"), "overrides": {"overwrite": False}}
    assert jobs[-1].parameters == {"runs_dir": str(tmp_path / "runs"), "figures_dir": str(tmp_path / "figures")}


def test_experiment_parameters_name_the_row_file_and_papermill_safe_overrides(tmp_path):
    """papermill merges shallowly and turns tuples into strings: a path and a flat dict of scalars."""
    configs = load_experiments(write_params(tmp_path / "params", tmp_path / "runs", names=("exp4.0",)))
    parameters = plan_jobs(configs, tmp_path / "params", tmp_path, False, {})[1].parameters
    assert set(parameters) == {"params", "overrides"} and Path(parameters["params"]).is_file()
    assert all(isinstance(v, (str, int, float, bool)) for v in parameters["overrides"].values())


def test_only_selects_experiments_and_rejects_unknown_names(tmp_path):
    params = write_params(tmp_path / "params", tmp_path / "runs")
    assert [c.experiment for c in load_experiments(params, ["exp5.2", "exp1.2"])] == ["exp1.2", "exp5.2"]
    with pytest.raises(ValueError, match="--only exp9.9: no such params file"):
        load_experiments(params, ["exp9.9"])


def test_params_file_must_be_named_after_its_experiment(tmp_path):
    folder = tmp_path / "params"
    folder.mkdir()
    (folder / "exp4.0.yaml").write_text("experiment: exp4.1\n")
    with pytest.raises(ConfigError, match=r"exp4\.0\.yaml: 'experiment' is 'exp4.1'"):
        load_experiments(folder)


def test_empty_params_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no params files"):
        load_experiments(tmp_path)
    (tmp_path / "base.yaml").write_text("epochs: 1\n")  # a base alone is no experiment
    with pytest.raises(FileNotFoundError, match="no params files"):
        load_experiments(tmp_path)


def test_experiments_writing_to_different_runs_dirs_are_rejected(tmp_path):
    folder = write_params(tmp_path / "params", tmp_path / "runs_a", names=("exp1.2",))
    write_params(folder, tmp_path / "runs_b", names=("exp2.3",))
    with pytest.raises(ConfigError, match="several runs_dir"):
        plan_jobs(load_experiments(folder), folder, tmp_path, False, {})


def test_finished_runs_are_skipped_unless_forced(tmp_path):
    configs = load_experiments(write_params(tmp_path / "params", tmp_path / "runs"))
    (tmp_path / "runs" / "exp4.0").mkdir(parents=True)
    (tmp_path / "runs" / "exp4.0" / "metrics.json").write_text("{}")
    lines: list[str] = []
    executor = RecordingExecutor()
    jobs = plan_jobs(configs, tmp_path / "params", tmp_path, False, {})
    executed = run_jobs(jobs, execute=executor, echo=lines.append)
    assert executed == ["size_distribution", "exp1.2", "exp5.2", "results"]
    started = [line for line in lines if " running -> " in line]  # one as each job starts
    assert len(started) == 4 and all(job.name in line for job, line in zip([j for j in jobs if j.name in executed], started))
    lines = [line for line in lines if line not in started]
    assert len(lines) == 5 and "exp4.0" in lines[2] and "skipped" in lines[2]
    ran = [job for job in jobs if job.name in executed]
    assert all(str(job.output) in line for job, line in zip(ran, [lines[0], lines[1], lines[3], lines[4]]))
    assert all(job.output.read_text() == "executed" for job in ran)

    forced = RecordingExecutor()
    jobs = plan_jobs(configs, tmp_path / "params", tmp_path, True, {})
    assert run_jobs(jobs, force=True, execute=forced, echo=lines.append)[2] == "exp4.0"
    assert all(call[2]["overrides"]["overwrite"] for call in forced.calls[1:-1])


def test_a_failed_notebook_stops_the_pipeline_and_is_kept(tmp_path):
    configs = load_experiments(write_params(tmp_path / "params", tmp_path / "runs"))
    executor = RecordingExecutor(fail_on="exp4.0")
    lines: list[str] = []
    with pytest.raises(NotebookFailed, match=r"(?s)exp4\.0: RuntimeError: cell 7 raised.*kept at .*exp4\.0/experiment\.ipynb"):
        run_jobs(plan_jobs(configs, tmp_path / "params", tmp_path, False, {}), execute=executor, echo=lines.append)
    assert [c[1].parent.name for c in executor.calls] == ["runs", "exp1.2", "exp4.0"]  # nothing after
    assert (tmp_path / "runs" / "exp4.0" / "experiment.ipynb").read_text() == "executed"
    assert "FAILED" in lines[-1]


def test_cli_bad_params_file_is_one_clean_error_before_any_work(tmp_path, capsys):
    folder = write_params(tmp_path / "params", tmp_path / "runs", names=("exp1.2",), detector="yolo")
    assert main(["reproduce", "--params", str(folder), "--data", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "exp1.2.yaml: 'detector' must be one of ['faster_fpn', 'adaptive_retinanet'], got 'yolo'" in err
    assert not (tmp_path / "data").exists() and not (tmp_path / "runs").exists()


def test_data_step_generates_the_synthetic_set_once_and_says_synthetic(tmp_path, monkeypatch):
    import tinysm.data.synth as synth
    from tinysm.config import config_from_mapping
    from tinysm.experiments.config import ExperimentConfig
    from tinysm.experiments.reproduce_data import prepare_data

    generated, presets = [], []
    real_generate = synth.generate

    def small_generate(root, overwrite=False, **preset):
        generated.append(root)
        presets.append(preset)
        return real_generate(root, train=1, test=1, coco_train=2, coco_val=1, workers=1, overwrite=overwrite,
                             tiny_config=synth.TinyPersonSceneConfig(frame_sizes=((320, 256),)),
                             coco_config=synth.CocoSceneConfig(frame_sizes=((160, 120),)))

    monkeypatch.setattr(synth, "generate", small_generate)
    data = tmp_path / "data"
    config = config_from_mapping(ExperimentConfig, {"experiment": "exp4.0", "pretrain": "sm",
                                                    "data_root": str(data / "synthetic")})
    lines: list[str] = []
    parameters = prepare_data(data, [config], echo=lines.append)
    assert generated == [data / "synthetic"]
    assert any("data: SYNTHETIC TinyPerson and COCO in" in line for line in lines)
    assert "\ntiny_set test (all): 1 images" in "\n".join(lines)
    assert parameters == {
        "target_annotations": str(data / "synthetic/tiny_set/mini_annotations/tiny_set_train_all_erase.json"),
        "source_annotations": str(data / "synthetic/coco/annotations/instances_train2017.json")}
    prepare_data(data, [config], echo=lines.append)
    assert len(generated) == 1  # already there: not generated again
    # A root named after another preset is generated with that preset's sizes.
    from tinysm.data.synth.presets import PRESETS
    cpu = config_from_mapping(ExperimentConfig, {"experiment": "exp1.2", "data_root": str(data / "synthetic_cpu")})
    prepare_data(data, [cpu], echo=lines.append)
    assert generated[-1] == data / "synthetic_cpu"
    assert presets == [PRESETS["synthetic"].generate_arguments(), PRESETS["synthetic_cpu"].generate_arguments()]
    assert presets[1]["train"] == 48 and presets[1]["tiny_config"].frame_sizes == ((320, 256),)


def test_data_step_refuses_real_data_params_without_the_real_data(tmp_path):
    from tinysm.config import config_from_mapping
    from tinysm.experiments.config import ExperimentConfig
    from tinysm.experiments.reproduce_data import prepare_data

    config = config_from_mapping(ExperimentConfig, {"experiment": "exp1.2", "data_root": str(tmp_path / "data")})
    with pytest.raises(FileNotFoundError, match=r"exp1\.2: data_root .* lacks TinyPerson"):
        prepare_data(tmp_path / "data", [config], echo=lambda line: None)
    assert not (tmp_path / "data" / "synthetic").exists()  # nothing generated for real-data params


# ------------------------------------------------------------------- the executed notebook is a record

class KernelError(Exception):
    """What papermill raises for a cell's exception: the kernel's exception name and message."""

    def __init__(self, ename: str, evalue: str):
        super().__init__(f"{ename}: {evalue}")
        self.ename, self.evalue = ename, evalue


class ExperimentKernel:
    """Stands in for papermill on experiment.ipynb: writes the notebook as it goes; `starts`: it gets
    as far as recording the run's config (start_run's last step); `error`: raised at the end."""

    def __init__(self, run_dir: Path, starts: bool, error: KernelError | None = None):
        self.run_dir, self.starts, self.error = run_dir, starts, error
        self.outputs: list[Path] = []

    def __call__(self, notebook: Path, output: Path, parameters: dict) -> None:
        self.outputs.append(output)
        output.write_text("first cells")
        if self.starts:
            from tinysm.io import atomic_write_text

            atomic_write_text(self.run_dir / "config.yaml", "experiment: exp4.0\n")
        output.write_text("this job's notebook")
        if self.error is not None:
            raise self.error


def finished_run(tmp_path: Path):
    """exp4.0 finished, its executed notebook the record; returns its job (planned without --force)."""
    configs = load_experiments(write_params(tmp_path / "params", tmp_path / "runs", names=("exp4.0",)))
    run_dir = configs[0].run_dir
    run_dir.mkdir(parents=True)
    for name, text in (("config.yaml", "experiment: exp4.0\n"), ("metrics.json", "{}"),
                       ("experiment.ipynb", "the record")):
        (run_dir / name).write_text(text)
    return plan_jobs(configs, tmp_path / "params", tmp_path, False, {})[1]


@pytest.mark.parametrize("error, config_rewritten", [
    (KernelError("FileExistsError", "runs/exp4.0 holds a finished run (metrics.json); set overwrite: true"), False),
    (KernelError("FileNotFoundError", "exp4.0: data_root 'data' lacks what the run reads"), False),
    (KernelError("FolderInUse", "runs/exp4.0 is in use by pid 7 on h (experiment exp4.0)"), False),
    # the process holding the run has recorded its config meanwhile: still not this job's run
    (KernelError("FolderInUse", "runs/exp4.0 is in use by pid 7 on h (experiment exp4.0)"), True),
], ids=["finished", "no data", "in use", "in use, restarted by its holder"])
def test_a_refused_rerun_leaves_the_finished_runs_notebook_unchanged(tmp_path, error, config_rewritten):
    job = finished_run(tmp_path)
    kernel = ExperimentKernel(job.output.parent, starts=config_rewritten, error=error)
    lines: list[str] = []
    with pytest.raises(NotebookFailed, match=rf"(?s){error.ename}: .*kept at .*experiment\.refused\.ipynb; "
                                             r"the run's record .*experiment\.ipynb is unchanged"):
        run_jobs([job], force=True, execute=kernel, echo=lines.append)
    assert kernel.outputs and all(output != job.output for output in kernel.outputs)  # never the record
    assert job.output.read_text() == "the record"
    assert (job.output.parent / "experiment.refused.ipynb").read_text() == "this job's notebook"
    assert "REFUSED" in lines[-1]
    assert sorted(p.name for p in job.output.parent.iterdir()) == [
        "config.yaml", "experiment.ipynb", "experiment.refused.ipynb", "metrics.json"]


@pytest.mark.parametrize("error", [None, KernelError("RuntimeError", "cell 9 raised")], ids=["done", "failed"])
def test_a_rerun_that_started_work_is_the_runs_record_failed_or_not(tmp_path, error):
    job = finished_run(tmp_path)
    kernel = ExperimentKernel(job.output.parent, starts=True, error=error)
    if error is None:
        assert run_jobs([job], force=True, execute=kernel, echo=lambda line: None) == ["exp4.0"]
    else:
        with pytest.raises(NotebookFailed, match=r"(?s)RuntimeError: cell 9 raised.*kept at .*/experiment\.ipynb$"):
            run_jobs([job], force=True, execute=kernel, echo=lambda line: None)
    assert job.output.read_text() == "this job's notebook"
    assert not any(p.name.endswith(".ipynb") and p != job.output for p in job.output.parent.iterdir())


@pytest.mark.slow
def test_the_experiment_notebook_refusing_a_finished_run_does_not_cost_its_record(tmp_path):
    """papermill and the real notebook: rerun without overwrite, start_run refuses in the first cell."""
    import nbformat

    from tinysm.experiments.reproduce import execute_with_papermill

    job = finished_run(tmp_path)
    with pytest.raises(NotebookFailed, match=r"(?s)FileExistsError: .*holds a finished run.*is unchanged"):
        run_jobs([job], force=True, execute=execute_with_papermill, echo=lambda line: None)
    assert job.output.read_text() == "the record"
    refused = nbformat.read(job.output.parent / "experiment.refused.ipynb", as_version=4)
    assert refused.metadata.papermill.exception is True
