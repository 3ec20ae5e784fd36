"""ExperimentConfig: params files, the notebook's parameter namespace, published numbers (reference §8)."""
from __future__ import annotations

import re

import pytest
import yaml

from experiment_support import write_data_layout
from tinysm.cli import main
from tinysm.config import ConfigError, config_from_mapping, config_to_dict, load_config
from tinysm.experiments.config import (
    PAPER_ROWS, ExperimentConfig, experiment_config_from_notebook, load_experiment_config, parameters_from_namespace,
)
from tinysm.experiments.stages import stage_config, stage_gpus
from tinysm.paths import repo_root

PARAMS = repo_root() / "params"
FOLDERS = ("paper", "synth", "smoke")  # the paper's seven rows; params/cpu, cpu_study and cpu_unfrozen: the CPU study
SEVEN = sorted(PAPER_ROWS)


def load_row(folder: str, name: str) -> ExperimentConfig:
    return load_experiment_config(PARAMS / folder / f"{name}.yaml")


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_params_folder_has_a_base_and_the_seven_short_rows(folder):
    files = sorted((PARAMS / folder).glob("*.yaml"))
    assert [f.stem for f in files] == ["base", *SEVEN]
    for name in SEVEN:
        text = (PARAMS / folder / f"{name}.yaml").read_text()
        keys = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith("#")]
        assert keys[0] == "base" and len(keys) <= 5, keys  # only what differs from the base
        assert load_row(folder, name).experiment == name  # the name comes from the file


@pytest.mark.parametrize("name", SEVEN)
def test_paper_rows_are_the_reference_recipe(name):
    """reference §7.1, §8: fp32, ResNet-50 from ImageNet, 0.005 per image on 2 GPUs x 1 image (LR 0.01),
    except exp5.1 on 1 GPU (LR 0.005); 12 epochs stepped at 8 and 11; pre-training 2 GPUs x 8 (exp4.0)
    or x 4 images at LR 0.01."""
    config = load_row("paper", name)
    gpus = 1 if name == "exp5.1" else 2
    assert (config.gpus, config.batch_size, config.lr_per_image, config.epochs) == (gpus, 1, 0.005, 12)
    assert config.optimizer_lr == pytest.approx(0.005 * gpus)
    assert config.milestones == [8, 11] and config.warmup_iters == 500 and config.amp is False
    assert config.backbone == "resnet50" and config.backbone_weights == "imagenet"
    assert config.data_root == "data" and config.max_dets == 1000
    row = PAPER_ROWS[name]
    assert config.detector == ("faster_fpn" if row.detector == "Faster-FPN" else "adaptive_retinanet")
    expected_pretrain = "msm" if "MSM" in row.pretraining else "sm" if "SM" in row.pretraining else "none"
    assert config.pretrain == expected_pretrain
    finetune = stage_config(config, "finetune")
    assert finetune.lr_per_image == 0.005 and finetune.amp is False
    assert finetune.clip_grad_norm == (1.0 if config.detector == "adaptive_retinanet" else None)
    if expected_pretrain != "none":
        images = int(re.search(r"(\d)×2", row.pretraining).group(1))
        assert (config.pretrain_batch_size, stage_gpus(config, "pretrain")) == (images, 2)
        pretrain = stage_config(config, "pretrain")
        assert pretrain.lr_per_image * images * 2 == pytest.approx(0.01)  # LR 0.01 on 2 GPUs
        assert pretrain.clip_grad_norm is None  # no clipping in pre-training (reference §7.1)
        assert (config.pretrain_epochs, config.sm_bins, pretrain.scale_match) == (12, 100, expected_pretrain)


@pytest.mark.parametrize("name", SEVEN)
def test_paper_params_comment_matches_the_published_table(name):
    """The comment a user reads in params/paper and the results table's column cannot drift apart."""
    text = (PARAMS / "paper" / f"{name}.yaml").read_text()
    quoted = re.search(r"Published AP50_tiny \(max_det 1000\): ([\d.]+)", text)
    assert quoted and float(quoted.group(1)) == PAPER_ROWS[name].ap50_tiny


@pytest.mark.parametrize("folder", ("synth", "smoke"))
def test_scaled_down_params_keep_each_experiments_recipe(folder):
    """synth/cpu/smoke change sizes and schedules, never which detector or pre-training a row uses."""
    for name in SEVEN:
        paper, scaled = load_row("paper", name), load_row(folder, name)
        assert (scaled.detector, scaled.pretrain) == (paper.detector, paper.pretrain)
        assert scaled.lr_per_image == paper.lr_per_image
        assert scaled.pretrain_lr_per_image == paper.pretrain_lr_per_image
        assert scaled.data_root == "data/synthetic" and scaled.gpus == scaled.pretrain_gpus == 1
        assert scaled.runs_dir == f"runs/{folder}"
        assert scaled.backbone_weights is None  # offline by construction: no download
        if scaled.pretrain != "none":  # from scratch all of BatchNorm trains anyway
            assert not stage_config(scaled, "pretrain").bn_affine_trainable


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
    ({"pretrain": "coco"}, r"'pretrain' must be one of \['none', 'plain', 'sm', 'msm', 'gaussian'\]"),
    ({"detector": "yolo"}, r"'detector' must be one of \['faster_fpn', 'adaptive_retinanet'\]"),
    ({"lr_per_image": 0.0}, "'lr_per_image' must be positive"),
    ({"gpus": 0}, "'gpus' must be at least 1"),
    ({"sm_scale_range": [1.0, 0.1]}, "'sm_scale_range' must be"),
    ({"sm_scale_range": [0.1]}, "'sm_scale_range' must be"),
    ({"experiment": "runs/exp"}, "plain folder name"),
])
def test_invalid_values_are_rejected(values, message):
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(ExperimentConfig, {"experiment": "exp1.2", **values}, "test")


def test_round_trip_through_yaml_is_lossless(tmp_path):
    config = load_row("paper", "exp4.0")
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
    namespace.update(params="params/paper/exp5.1.yaml", overrides={"lr_per_image": 0.02}, _private=1)
    assert parameters_from_namespace(namespace, before) == {
        "params": "params/paper/exp5.1.yaml", "overrides": {"lr_per_image": 0.02}}
    config = experiment_config_from_notebook(namespace, before)
    assert (config.experiment, config.detector, config.lr_per_image) == ("exp5.1", "adaptive_retinanet", 0.02)


def test_a_parameter_that_rebinds_an_imported_name_is_still_a_parameter():
    namespace = {"pretrain": print, "plots": print}
    before = dict(namespace)
    namespace.update(experiment="exp4.0", pretrain="sm")
    assert parameters_from_namespace(namespace, before) == {"experiment": "exp4.0", "pretrain": "sm"}
    # Only the names were recorded: a rebound name cannot be told from the import.
    assert parameters_from_namespace(namespace, set(before)) == {"experiment": "exp4.0"}


def test_notebook_rejects_a_parameter_papermill_only_warns_about():
    with pytest.raises(ConfigError, match=r"experiment.ipynb parameters: unknown key\(s\) \['batch'\]"):
        experiment_config_from_notebook({"params": "params/paper/exp1.2.yaml", "batch": 4}, {})
    with pytest.raises(ConfigError, match=r"exp1.2.yaml: unknown key\(s\) \['batch'\]"):  # an override key
        experiment_config_from_notebook({"params": "params/paper/exp1.2.yaml", "overrides": {"batch": 4}}, {})


def test_papermill_list_for_a_list_field_is_accepted_and_a_string_is_not():
    ok = config_from_mapping(ExperimentConfig, {"experiment": "e", "milestones": [3, 4]})
    assert ok.milestones == [3, 4]
    with pytest.raises(ConfigError, match="'milestones' must be a list"):
        config_from_mapping(ExperimentConfig, {"experiment": "e", "milestones": "(3, 4)"})



# ----------------------------------------------------------------------------- stages and run folder

def paper_config(name: str, tmp_path, **overrides) -> ExperimentConfig:
    return load_experiment_config(PARAMS / "paper" / f"{name}.yaml",
                                  {"runs_dir": str(tmp_path / "runs"), "data_root": str(tmp_path / "data"), **overrides})


def test_finetune_stage_is_the_seed_recipe_on_erased_training_tiles(tmp_path):
    """reference §8: 0.005 per image (0.01 over 2 GPUs x 1 image); reference §1.2, §2.1: erased tiles."""
    config = paper_config("exp1.2", tmp_path)
    stage = stage_config(config, "finetune", init_from=None)
    assert stage.lr_per_image == pytest.approx(0.005) and stage.batch_size == 1
    assert (stage.epochs, tuple(stage.milestones), stage.warmup_iters) == (12, (8, 11), 500)
    assert stage.train_annotations == tmp_path / "data/tiny_set/mini_annotations/tiny_set_train_sw640_sh512_all_erase.json"
    assert stage.train_images == tmp_path / "data/tiny_set/erase_with_uncertain_dataset/train"
    assert stage.out_dir == tmp_path / "runs/exp1.2/finetune"
    assert stage.scale_match == "none" and stage.clip_grad_norm is None and stage.backbone_weights == "imagenet"


def test_pretrain_stage_scale_matches_coco_onto_tinyperson(tmp_path):
    """reference §8: LR 0.01 over 2 GPUs x 8 images (exp4.0); target histogram from TinyPerson training boxes."""
    stage = stage_config(paper_config("exp4.0", tmp_path), "pretrain")
    assert stage.lr_per_image == pytest.approx(0.01 / 16) and stage.batch_size == 8
    # reference §8: train2017 + val2017 merged (file names under the COCO root); MSM reads train2017's sizes
    assert stage.scale_match == "sm" and stage.train_annotations == tmp_path / "data/coco/annotations/instances_merge2017.json"
    assert stage.train_images == tmp_path / "data/coco"
    assert stage.sm_source_annotations == tmp_path / "data/coco/annotations/instances_train2017.json"
    assert stage.sm_target_annotations == tmp_path / "data/tiny_set/mini_annotations/tiny_set_train_all_erase.json"
    assert (stage.sm_bins, tuple(stage.sm_scale_range), stage.sm_default_scale) == (100, (0.1, 1.0), 0.25)
    plain = stage_config(paper_config("exp4.0", tmp_path, pretrain="plain"), "pretrain")
    assert plain.scale_match == "none" and plain.sm_target_annotations is None


def test_retinanet_c_clips_gradients_at_one_when_fine_tuning_and_transfers_from_pretraining(tmp_path):
    """reference §7: the "-c" of Adap RetinaNet-c is gradient clipping at max-norm 1 while fine-tuning;
    reference §7.1: the COCO pre-training is not clipped."""
    config = paper_config("exp5.2", tmp_path)
    pretrain = stage_config(config, "pretrain")
    finetune = stage_config(config, "finetune", init_from=pretrain.paths.final_checkpoint)
    assert pretrain.scale_match == "msm" and pretrain.clip_grad_norm is None and finetune.clip_grad_norm == 1.0
    assert finetune.init_from == tmp_path / "runs/exp5.2/pretrain/model_final.pt"
    assert finetune.backbone_freezing == "reference" and not finetune.trainable_backbone  # reference §7
    ablation = paper_config("exp5.2", tmp_path, finetune_backbone_freezing="none")
    assert stage_config(ablation, "finetune", init_from=pretrain.paths.final_checkpoint).trainable_backbone
    assert stage_config(ablation, "pretrain").backbone_freezing == "reference"  # fine-tuning only


def test_a_finished_run_is_not_replaced_unless_asked(tmp_path):
    from tinysm.experiments.run import start_run

    config = paper_config("exp4.1", tmp_path, backbone_weights=None)  # no download here
    write_data_layout(tmp_path / "data")
    run_dir = start_run(config)
    assert load_config(ExperimentConfig, run_dir / "config.yaml") == config
    (run_dir / "metrics.json").write_text('{"metrics": {}}')
    (run_dir / "finetune").mkdir()
    (run_dir / "experiment.ipynb").write_text("the notebook papermill is writing")
    with pytest.raises(FileExistsError, match=r"exp4\.1 holds a finished run .*overwrite: true"):
        start_run(config)
    assert (run_dir / "metrics.json").exists()
    start_run(paper_config("exp4.1", tmp_path, backbone_weights=None, overwrite=True))
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "finetune").exists()
    assert (run_dir / "experiment.ipynb").read_text() == "the notebook papermill is writing"


def test_several_gpus_run_the_stage_under_torchrun_and_stream_its_output(tmp_path, monkeypatch, capsys):
    import subprocess
    import sys

    from tinysm.engine.config import load_train_config
    from tinysm.engine.stage_folder import check_run_folder, write_finished
    from tinysm.experiments import run as experiment

    config = paper_config("exp1.2", tmp_path)  # gpus: 2
    write_data_layout(tmp_path / "data")
    launched = []

    class FakeTorchrun:
        """What `tinysm train` leaves in a stage folder it finished: its config, the final checkpoint
        and the record that says it is complete."""

        def __init__(self, command, **kwargs):
            launched.append(command)
            stage = load_train_config(command[-1])
            stage.paths.final_checkpoint.parent.mkdir(parents=True)
            check_run_folder(stage, stage.paths)
            stage.paths.final_checkpoint.write_bytes(b"weights")
            write_finished(stage.paths, iteration=2)
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
    assert load_train_config(launched[0][-1]) == stage_config(config, "finetune")
    assert "train finetune: 1/2\ntrain finetune: 2/2\n" in capsys.readouterr().out
    # A finished stage is reused, not trained again.
    assert experiment.run_stage(config, "finetune") == final and len(launched) == 1


def write_folder(tmp_path, base: str, row: str):
    (tmp_path / "base.yaml").write_text(base)
    (tmp_path / "exp4.1.yaml").write_text(row)
    return tmp_path / "exp4.1.yaml"


def test_a_row_holds_only_its_differences_from_the_base(tmp_path):
    path = write_folder(tmp_path, "data_root: elsewhere\nepochs: 3\ngpus: 1\n",
                        "base: base.yaml\npretrain: msm\nepochs: 5\n")
    config = load_experiment_config(path, {"seed": 7})
    assert (config.experiment, config.data_root, config.pretrain, config.epochs, config.gpus, config.seed) == (
        "exp4.1", "elsewhere", "msm", 5, 1, 7)  # row over base, overrides over both
    assert config.lr_per_image == ExperimentConfig(experiment="x").lr_per_image  # the rest: defaults


@pytest.mark.parametrize("base, row, message", [
    ("learning_rate: 0.1\n", "base: base.yaml\n", r"base\.yaml: unknown key\(s\) \['learning_rate'\]"),
    ("epochs: twelve\n", "base: base.yaml\n", r"base\.yaml: 'epochs' must be an integer"),
    ("epochs: 3\n", "base: base.yaml\ngpus: two\n", r"exp4\.1\.yaml: 'gpus' must be an integer"),
    ("epochs: 3\nepochs: 4\n", "base: base.yaml\n", r"base\.yaml: not valid YAML: .*key 'epochs' appears twice"),
    ("epochs: 3\n", "base: missing.yaml\n", r"missing\.yaml: params file does not exist"),
    ("base: exp4.1.yaml\n", "base: base.yaml\n", "form a loop"),
])
def test_each_file_of_a_row_is_checked_under_its_own_name(tmp_path, base, row, message):
    with pytest.raises(ConfigError, match=message):
        load_experiment_config(write_folder(tmp_path, base, row))


def test_tinysm_config_prints_the_resolved_row_and_its_learning_rates(capsys):
    assert main(["config", str(PARAMS / "paper" / "exp5.1.yaml"), "--set", "seed=3"]) == 0
    out = capsys.readouterr().out
    printed = yaml.safe_load(out)
    assert printed == config_to_dict(load_experiment_config(PARAMS / "paper" / "exp5.1.yaml", {"seed": 3}))
    assert "# fine-tuning: SGD LR 0.005 = 0.005 per image x 1 image(s) x 1 GPU(s)" in out
    assert "# pre-training: SGD LR 0.01 = 0.00125 per image x 4 image(s) x 2 GPU(s)" in out
    assert main(["config", str(PARAMS / "paper" / "exp5.1.yaml"), "--set", "seed=[1"]) == 2
    assert "--set 'seed=[1': the value is not valid YAML" in capsys.readouterr().err


def test_the_cpu_study_gives_every_arm_the_same_recipe():
    """Issue 13: per detector, the rows differ only in the pre-training arm and the seed; params/cpu
    (the default of make reproduce on a CPU) is the study's first seed of the Faster-FPN arms."""
    from tinysm.experiments.reproduce import load_experiments

    study = {c.experiment: c for c in load_experiments(PARAMS / "cpu_study")}
    arms, seeds = ("none", "plain", "sm", "msm"), (0, 1, 2)
    assert sorted(study) == sorted(f"{d}-{a}-s{s}" for d in ("faster_fpn", "adaptive_retinanet")
                                   for a in arms for s in seeds)
    recipes: dict[str, set] = {}
    for config in study.values():
        assert (config.pretrain, config.seed) in {(a, s) for a in arms for s in seeds}
        assert config.experiment == f"{config.detector}-{config.pretrain}-s{config.seed}"
        assert config.data_root == "data/synthetic_cpu" and config.backbone_weights is None
        recipe = {k: v for k, v in config_to_dict(config).items() if k not in ("experiment", "pretrain", "seed")}
        recipes.setdefault(config.detector, set()).add(yaml.safe_dump(recipe))
    assert {detector: len(found) for detector, found in recipes.items()} == {"faster_fpn": 1, "adaptive_retinanet": 1}
    default = {c.experiment: c for c in load_experiments(PARAMS / "cpu")}
    assert sorted(default) == sorted(f"faster_fpn-{a}-s0" for a in arms)
    for name, config in default.items():
        assert config_to_dict(config) == config_to_dict(study[name])  # the same runs: the study reuses them


def test_the_unfrozen_ablation_is_the_studys_faster_fpn_rows_with_only_the_freezing_changed():
    from tinysm.experiments.reproduce import load_experiments

    study = {c.experiment: c for c in load_experiments(PARAMS / "cpu_study")}
    ablation = {c.experiment: c for c in load_experiments(PARAMS / "cpu_unfrozen")}
    assert sorted(ablation) == sorted(name for name in study if name.startswith("faster_fpn-"))
    for name, config in ablation.items():
        changed = {key for key, value in config_to_dict(config).items()
                   if value != config_to_dict(study[name])[key]}
        assert changed == {"runs_dir", "finetune_backbone_freezing"}, name
        assert config.finetune_backbone_freezing == "none" and config.runs_dir == "runs/cpu_unfrozen"
