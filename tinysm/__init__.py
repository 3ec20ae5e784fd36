"""tinysm: Scale Match for Tiny Person Detection (Yu et al., WACV 2020) on PyTorch + torchvision."""

__version__ = "0.1.0"
