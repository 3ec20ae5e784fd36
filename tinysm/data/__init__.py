"""Annotations, tiles, datasets, erase and synthetic data (reference §1–§2)."""
from tinysm.data.annotations import (
    AnnotationError, BoxAnnotation, CocoAnnotations, ImageRecord, dense_image_ids, drop_dense_images,
    drop_ignored_boxes, load_annotations, save_annotations, split_crowd, to_all_task,
)
from tinysm.data.layout import CocoLayout, DataRoots, TinyPersonLayout, find_data
from tinysm.data.tiles import cut_tiles, tile_grid

__all__ = [
    "AnnotationError", "BoxAnnotation", "CocoAnnotations", "ImageRecord", "dense_image_ids",
    "drop_dense_images", "drop_ignored_boxes", "load_annotations", "save_annotations", "split_crowd",
    "to_all_task", "CocoLayout", "DataRoots", "TinyPersonLayout", "find_data", "cut_tiles", "tile_grid",
]
