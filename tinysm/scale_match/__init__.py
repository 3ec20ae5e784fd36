"""Scale Match (Yu et al., WACV 2020): rescale external images so that their object sizes follow a
target dataset's size distribution.

- `sizes`: object sizes and `SizeDistribution`, the target's rectified histogram (reference §3);
- `transforms`: `ScaleMatch` (reference §4), `MonotoneScaleMatch` and `GaussianScaleMatch` (reference §5);
- `methods`: `METHODS`, the table of size-matching methods by name, and `SizeMatchSettings`.
"""
from tinysm.scale_match.methods import METHODS, SizeMatchMethod, SizeMatchSettings
from tinysm.scale_match.sizes import (
    BIN_TOLERANCE, SizeDistribution, counts_for_size, image_mean_size, image_mean_sizes, object_sizes,
)
from tinysm.scale_match.transforms import (
    MIN_BOX_EXTENT, BinMap, GaussianScaleMatch, MatchedBoxes, MonotoneScaleMatch, ScaleMatch, SizeMatchTransform,
    source_knots,
)

__all__ = [
    "BIN_TOLERANCE", "MIN_BOX_EXTENT", "METHODS", "BinMap", "GaussianScaleMatch", "MatchedBoxes",
    "MonotoneScaleMatch", "ScaleMatch", "SizeDistribution", "SizeMatchMethod", "SizeMatchSettings",
    "SizeMatchTransform", "counts_for_size", "image_mean_size", "image_mean_sizes", "object_sizes",
    "source_knots",
]
