"""Training engine (reference §8): one stage of the paper's recipes on a CPU, one GPU or under torchrun.

- `config`: `TrainConfig`, the typed config of one stage, and `RunPaths`, the files it writes.
- `train`: `train(config) -> final checkpoint`, `train_one_epoch`, `NonFiniteLossError`.
- `schedule`: warm-up + multi-step LR; `checkpoint`: atomic, exactly resumable checkpoints.
- `data`: the stage's seeded, resumable loader; `distributed`: torchrun / DDP helpers.
- `metrics_log`: the JSON-lines log; `evaluate`: tiled inference + TinyPerson metrics.
- `predict`: tiled full-image inference (reference §2.3).
"""
