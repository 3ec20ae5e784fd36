"""The LR schedule of reference §8: linear warm-up from 0.001× over 500 iterations, ×0.1 after epochs 8, 11."""
from __future__ import annotations

import pytest
import torch

from tinysm.engine.schedule import WarmupMultiStep, build_scheduler


def test_paper_schedule_values_by_hand():
    schedule = WarmupMultiStep(iters_per_epoch=100, milestones=(8, 11), warmup_iters=500, warmup_ratio=0.001)
    assert schedule(0) == pytest.approx(0.001)
    assert schedule(250) == pytest.approx(0.001 + 0.999 * 0.5)  # halfway up the ramp: 0.5005
    assert schedule(499) == pytest.approx(0.001 + 0.999 * 499 / 500)
    assert schedule(500) == 1.0
    assert schedule(799) == 1.0          # last iteration of epoch 8 (0-based epoch 7)
    assert schedule(800) == pytest.approx(0.1)   # "after epoch 8"
    assert schedule(1099) == pytest.approx(0.1)
    assert schedule(1100) == pytest.approx(0.01)  # "after epoch 11"
    assert schedule(1199) == pytest.approx(0.01)


def test_warmup_multiplies_an_already_decayed_rate():
    # mmdetection's linear warm-up scales the regular rate, decay included.
    schedule = WarmupMultiStep(iters_per_epoch=10, milestones=(8,), warmup_iters=100, warmup_ratio=0.001)
    assert schedule(85) == pytest.approx(0.1 * (0.001 + 0.999 * 0.85))


def test_no_warmup():
    schedule = WarmupMultiStep(iters_per_epoch=4, milestones=(1, 2), warmup_iters=0)
    assert [schedule(i) for i in range(0, 12, 4)] == pytest.approx([1.0, 0.1, 0.01])


def test_scheduler_drives_the_optimizer_and_its_state_round_trips(tmp_path):
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=0.01)
    schedule = WarmupMultiStep(iters_per_epoch=3, milestones=(2,), warmup_iters=2, warmup_ratio=0.5)
    scheduler = build_scheduler(optimizer, schedule)
    seen = []
    for _ in range(7):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    # iterations 0..6: warm-up 0.5, 0.75, then 1 until epoch 2 (iteration 6) gives 0.1
    assert seen == pytest.approx([0.005, 0.0075, 0.01, 0.01, 0.01, 0.01, 0.001])

    torch.save(scheduler.state_dict(), tmp_path / "s.pt")
    restored_optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    restored = build_scheduler(restored_optimizer, WarmupMultiStep(iters_per_epoch=3, milestones=(2,),
                                                                   warmup_iters=2, warmup_ratio=0.5))
    restored.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    assert restored.last_epoch == 7
    assert restored.get_last_lr() == pytest.approx(scheduler.get_last_lr())
