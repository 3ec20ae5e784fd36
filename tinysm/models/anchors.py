"""Anchors with mmdetection's exact float shapes (reference §7.1), for both detectors."""
from __future__ import annotations

import torch
from torch import Tensor
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList


class FloatAnchorGenerator(AnchorGenerator):
    """AnchorGenerator whose cell anchors keep their float shapes (reference §7.1), kept in float32.

    torchvision rounds every cell anchor to whole pixels: the 8 px, ratio-0.5 anchor
    (w = 8/√0.5 = 11.31, h = 8·√0.5 = 5.66) becomes 12 × 6, a 12.5 % larger area, and the
    Adaptive RetinaNet's 10.08 px and 12.70 px squares become 10 and 12 px. mmdetection's AnchorGenerator
    keeps the floats; so does this one, and it keeps them in float32 (or the features' dtype if
    wider) where torchvision would cast them to the features' bf16 under autocast, a 4 px grid
    near x = 600. It also places each level's anchors at that level's own stride: torchvision
    derives the stride as padded image size // feature size, which for P6 is not 64 when the
    padded side is an odd multiple of 32 (a 96 × 160 input: P6 anchors 48 and 53 px apart, drifting
    off the cells they are read from); mmdetection uses the configured strides.

    Shape and placement are otherwise both libraries': for height/width ratio r and size s,
    w = s/√r and h = s·√r; ratios vary slowest, then sizes (mmdetection's `scale_major=True`); the
    cell anchor is centred on (0, 0), i.e. [-w/2, -h/2, w/2, h/2], and the copy at feature cell
    (i, j) is shifted by (j·stride, i·stride). That is mmdetection 2.x's `center_offset=0` (its
    default, which the reference configs keep): anchor centres sit on the cells' top-left corners,
    not on their centres (mmdetection 1.x's LegacyAnchorGenerator centred them at (stride - 1)/2
    and rounded the corners; the reference does not use it).
    """

    def __init__(self, sizes: tuple[tuple[float, ...], ...], aspect_ratios: tuple[tuple[float, ...], ...],
                 strides: tuple[int, ...]):
        super().__init__(sizes, aspect_ratios)
        if len(strides) != len(sizes):
            raise ValueError(f"need one stride per level, got {strides} for {len(sizes)} levels")
        self.strides = tuple(strides)

    def generate_anchors(self, scales: list[int], aspect_ratios: list[float], dtype: torch.dtype = torch.float32,
                         device: torch.device = torch.device("cpu")) -> Tensor:
        sizes = torch.as_tensor(scales, dtype=dtype, device=device)
        ratios = torch.as_tensor(aspect_ratios, dtype=dtype, device=device)
        widths = (sizes[None, :] / ratios.sqrt()[:, None]).flatten()
        heights = (sizes[None, :] * ratios.sqrt()[:, None]).flatten()
        return torch.stack([-widths, -heights, widths, heights], dim=1) / 2

    def set_cell_anchors(self, dtype: torch.dtype, device: torch.device) -> None:
        wide = torch.promote_types(dtype, torch.float32)
        self.cell_anchors = [anchors.to(dtype=wide, device=device) for anchors in self.cell_anchors]

    def forward(self, image_list: ImageList, feature_maps: list[Tensor]) -> list[Tensor]:
        """The anchors of every level, at the levels' own strides, once per image in the batch."""
        device = feature_maps[0].device
        self.set_cell_anchors(feature_maps[0].dtype, device)
        strides = [[torch.tensor(stride, device=device)] * 2 for stride in self.strides]
        levels = self.grid_anchors([list(f.shape[-2:]) for f in feature_maps], strides)
        return [torch.cat(levels) for _ in image_list.image_sizes]


def anchor_generator(sizes: tuple[tuple[float, ...], ...], aspect_ratios: tuple[float, ...],
                     strides: tuple[int, ...], round_anchors: bool) -> AnchorGenerator:
    """The anchors of every level: the reference's (float, at `strides`) or torchvision's (rounded,
    at strides derived from the padded image size)."""
    ratios = (tuple(aspect_ratios),) * len(sizes)
    return AnchorGenerator(sizes, ratios) if round_anchors else FloatAnchorGenerator(sizes, ratios, strides)
