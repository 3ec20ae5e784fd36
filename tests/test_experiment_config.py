"""ExperimentConfig: params files, the notebook's parameter namespace, published numbers (SPEC §8)."""
from __future__ import annotations

import re

import pytest
import yaml

from tinysm.config import ConfigError, config_from_mapping, config_to_dict, load_config
from tinysm.experiment_config import (
    PAPER_ROWS, ExperimentConfig, experiment_config_from_notebook, parameters_from_namespace,
)
from tinysm.paths import repo_root

PARAMS = repo_root() / "params"
FOLDERS = ("paper", "synth", "cpu", "smoke")
SEVEN = sorted(PAPER_ROWS)


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_params_folder_has_the_seven_experiments_and_each_file_validates(folder):
    files = sorted((PARAMS / folder).glob("*.yaml"))
    assert [f.stem for f in files] == SEVEN
    for path in files:
        config = load_config(ExperimentConfig, path)
        assert config.experiment == path.stem


@pytest.mark.parametrize("name", SEVEN)
def test_paper_params_follow_the_seed_recipe(name):
    """SPEC §8: 2 GPUs x 1 image at LR 0.01, 12 epochs stepped at 8 and 11; pre-training batch 8 (exp4.0) or 4."""
    config = load_config(ExperimentConfig, PARAMS / "paper" / f"{name}.yaml")
    assert (config.gpus, config.batch_size, config.lr, config.epochs) == (2, 1, 0.01, 12)
    assert config.milestones == [8, 11] and config.warmup_iters == 500
    assert config.backbone == "resnet50" and config.data_root == "data" and config.max_dets == 1000
    row = PAPER_ROWS[name]
    assert config.detector == ("faster_fpn" if row.detector == "Faster-FPN" else "adaptive_retinanet")
    expected_pretrain = "msm" if "MSM" in row.pretraining else "sm" if "SM" in row.pretraining else "none"
    assert config.pretrain == expected_pretrain
    if expected_pretrain != "none":
        assert config.pretrain_batch_size == int(re.search(r"(\d)×2", row.pretraining).group(1))
        assert (config.pretrain_lr, config.pretrain_epochs, config.sm_bins) == (0.01, 12, 100)


@pytest.mark.parametrize("name", SEVEN)
def test_paper_params_comment_matches_the_published_table(name):
    """The comment a user reads in params/paper and the results table's column cannot drift apart."""
    text = (PARAMS / "paper" / f"{name}.yaml").read_text()
    quoted = re.search(r"Published AP50_tiny \(max_det 1000\): ([\d.]+)", text)
    assert quoted and float(quoted.group(1)) == PAPER_ROWS[name].ap50_tiny


@pytest.mark.parametrize("folder", ("synth", "cpu", "smoke"))
def test_scaled_down_params_keep_each_experiments_recipe(folder):
    """synth/cpu/smoke change sizes and schedules, never which detector or pre-training a row uses."""
    for name in SEVEN:
        paper = load_config(ExperimentConfig, PARAMS / "paper" / f"{name}.yaml")
        scaled = load_config(ExperimentConfig, PARAMS / folder / f"{name}.yaml")
        assert (scaled.detector, scaled.pretrain) == (paper.detector, paper.pretrain)
        assert scaled.data_root == "data/synthetic" and scaled.gpus == 1
        assert scaled.runs_dir == f"runs/{folder}"


def test_published_numbers_are_spec_section_8():
    assert {k: v.ap50_tiny for k, v in PAPER_ROWS.items()} == {
        "exp1.2": 49.81, "exp4.0": 50.85, "exp4.1": 50.30, "exp4.2": 50.18,
        "exp2.3": 45.22, "exp5.1": 51.78, "exp5.2": 50.00}


def test_unknown_key_is_named_with_the_file(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("experiment: exp1.2\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml: unknown key\(s\) \['learning_rate'\]"):
        load_config(ExperimentConfig, path)


def test_wrong_type_is_named(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("experiment: exp1.2\nepochs: twelve\n")
    with pytest.raises(ConfigError, match="'epochs' must be an integer, got 'twelve'"):
        load_config(ExperimentConfig, path)


@pytest.mark.parametrize("values, message", [
    ({"pretrain": "coco"}, r"'pretrain' must be one of \['none', 'plain', 'sm', 'msm'\]"),
    ({"gpus": 0}, "'gpus' must be at least 1"),
    ({"sm_scale_range": [1.0, 0.1]}, "'sm_scale_range' must be"),
    ({"sm_scale_range": [0.1]}, "'sm_scale_range' must be"),
    ({"experiment": "runs/exp"}, "plain folder name"),
])
def test_invalid_values_are_rejected(values, message):
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(ExperimentConfig, {"experiment": "exp1.2", **values}, "test")


def test_round_trip_through_yaml_is_lossless(tmp_path):
    config = load_config(ExperimentConfig, PARAMS / "paper" / "exp4.0.yaml")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_to_dict(config)))
    assert load_config(ExperimentConfig, path) == config


def test_run_dir_is_resolved_from_the_repository_root_not_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = ExperimentConfig(experiment="exp4.0", runs_dir="runs/cpu")
    assert config.run_dir == repo_root() / "runs" / "cpu" / "exp4.0"
    assert ExperimentConfig(experiment="x", data_root=str(tmp_path)).data_dir == tmp_path


def test_notebook_namespace_gives_the_parameters_cells_names_only():
    namespace = {"In": [], "get_ipython": print, "ExperimentConfig": ExperimentConfig}
    before = dict(namespace)
    namespace.update(experiment="exp5.1", detector="adaptive_retinanet", lr=0.02, _private=1)
    assert parameters_from_namespace(namespace, before) == {
        "experiment": "exp5.1", "detector": "adaptive_retinanet", "lr": 0.02}
    config = experiment_config_from_notebook(namespace, before)
    assert (config.experiment, config.detector, config.lr) == ("exp5.1", "adaptive_retinanet", 0.02)


def test_a_parameter_that_rebinds_an_imported_name_is_still_a_parameter():
    namespace = {"pretrain": print, "plots": print}
    before = dict(namespace)
    namespace.update(experiment="exp4.0", pretrain="sm")
    assert parameters_from_namespace(namespace, before) == {"experiment": "exp4.0", "pretrain": "sm"}
    # Only the names were recorded: a rebound name cannot be told from the import.
    assert parameters_from_namespace(namespace, set(before)) == {"experiment": "exp4.0"}


def test_notebook_rejects_a_parameter_papermill_only_warns_about():
    with pytest.raises(ConfigError, match=r"experiment.ipynb parameters: unknown key\(s\) \['batch'\]"):
        experiment_config_from_notebook({"experiment": "exp1.2", "batch": 4}, {})


def test_papermill_list_for_a_list_field_is_accepted_and_a_string_is_not():
    ok = config_from_mapping(ExperimentConfig, {"experiment": "e", "milestones": [3, 4]})
    assert ok.milestones == [3, 4]
    with pytest.raises(ConfigError, match="'milestones' must be a list"):
        config_from_mapping(ExperimentConfig, {"experiment": "e", "milestones": "(3, 4)"})



# ----------------------------------------------------------------------------- stages and run folder

def paper_config(name: str, tmp_path, **overrides) -> ExperimentConfig:
    return load_config(ExperimentConfig, PARAMS / "paper" / f"{name}.yaml",
                       {"runs_dir": str(tmp_path / "runs"), "data_root": str(tmp_path / "data"), **overrides})


def test_finetune_stage_is_the_seed_recipe_on_erased_training_tiles(tmp_path):
    """SPEC §8: 0.005 per image (0.01 over 2 GPUs x 1 image); SPEC §1.2, §2.1: erased tiles."""
    from tinysm.experiment import stage_config

    config = paper_config("exp1.2", tmp_path)
    stage = stage_config(config, "finetune", init_from=None)
    assert stage.lr_per_image == pytest.approx(0.005) and stage.batch_size == 1
    assert (stage.epochs, tuple(stage.milestones), stage.warmup_iters) == (12, (8, 11), 500)
    assert stage.train_annotations == tmp_path / "data/tiny_set/mini_annotations/tiny_set_train_sw640_sh512_all_erase.json"
    assert stage.train_images == tmp_path / "data/tiny_set/erase_with_uncertain_dataset/train"
    assert stage.out_dir == tmp_path / "runs/exp1.2/finetune"
    assert stage.scale_match == "none" and stage.clip_grad_norm is None and stage.backbone_weights == "imagenet"


def test_pretrain_stage_scale_matches_coco_onto_tinyperson(tmp_path):
    """SPEC §8: LR 0.01 over 2 GPUs x 8 images (exp4.0); target histogram from TinyPerson training boxes."""
    from tinysm.experiment import stage_config

    stage = stage_config(paper_config("exp4.0", tmp_path), "pretrain")
    assert stage.lr_per_image == pytest.approx(0.01 / 16) and stage.batch_size == 8
    assert stage.scale_match == "sm" and stage.train_annotations == tmp_path / "data/coco/annotations/instances_train2017.json"
    assert stage.sm_target_annotations == tmp_path / "data/tiny_set/mini_annotations/tiny_set_train_all_erase.json"
    assert (stage.sm_bins, tuple(stage.sm_scale_range), stage.sm_default_scale) == (100, (0.1, 1.0), 0.25)
    plain = stage_config(paper_config("exp4.0", tmp_path, pretrain="plain"), "pretrain")
    assert plain.scale_match == "none" and plain.sm_target_annotations is None


def test_retinanet_c_clips_gradients_at_one_and_transfers_from_pretraining(tmp_path):
    """SPEC §7: the "-c" of Adap RetinaNet-c is gradient clipping at max-norm 1."""
    from tinysm.experiment import stage_config

    config = paper_config("exp5.2", tmp_path)
    pretrain = stage_config(config, "pretrain")
    finetune = stage_config(config, "finetune", init_from=pretrain.paths.final_checkpoint)
    assert pretrain.scale_match == "msm" and pretrain.clip_grad_norm == finetune.clip_grad_norm == 1.0
    assert finetune.init_from == tmp_path / "runs/exp5.2/pretrain/model_final.pt"


def test_a_finished_run_is_not_replaced_unless_asked(tmp_path):
    from tinysm.experiment import start_run

    config = paper_config("exp4.1", tmp_path)
    run_dir = start_run(config)
    assert load_config(ExperimentConfig, run_dir / "config.yaml") == config
    (run_dir / "metrics.json").write_text('{"metrics": {}}')
    (run_dir / "finetune").mkdir()
    (run_dir / "experiment.ipynb").write_text("the notebook papermill is writing")
    with pytest.raises(FileExistsError, match=r"exp4\.1 holds a finished run .*overwrite: true"):
        start_run(config)
    assert (run_dir / "metrics.json").exists()
    start_run(paper_config("exp4.1", tmp_path, overwrite=True))
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "finetune").exists()
    assert (run_dir / "experiment.ipynb").read_text() == "the notebook papermill is writing"


def test_several_gpus_run_the_stage_under_torchrun_and_stream_its_output(tmp_path, monkeypatch, capsys):
    import subprocess
    import sys

    from tinysm import experiment
    from tinysm.engine.config import load_train_config

    config = paper_config("exp1.2", tmp_path)  # gpus: 2
    launched = []

    class FakeTorchrun:
        def __init__(self, command, **kwargs):
            launched.append(command)
            stage = load_train_config(command[-1])
            stage.paths.final_checkpoint.parent.mkdir(parents=True)
            stage.paths.final_checkpoint.write_bytes(b"weights")
            self.stdout, self.returncode = iter(["train finetune: 1/2\n", "train finetune: 2/2\n"]), 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(subprocess, "Popen", FakeTorchrun)
    final = experiment.run_stage(config, "finetune")
    assert final == tmp_path / "runs/exp1.2/finetune/model_final.pt"
    assert launched[0][:6] == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                               "--nproc_per_node=2", "-m"]
    assert launched[0][6:8] == ["tinysm", "train"]
    assert load_train_config(launched[0][-1]) == experiment.stage_config(config, "finetune")
    assert "train finetune: 1/2\ntrain finetune: 2/2\n" in capsys.readouterr().out
    # A finished stage is reused, not trained again.
    assert experiment.run_stage(config, "finetune") == final and len(launched) == 1
