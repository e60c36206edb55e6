"""Data loaders and splits (no downloads): Mulan ARFF, Olivetti faces, image stacks, masks.

Locate the benchmark files with :func:`default_data_dir` (``$ICNN_DATA_DIR`` or
``<repo>/../shared/data``); kept files name them by :func:`recorded_path`.
"""

from icnn.data.arff import load_multilabel_arff
from icnn.data.images import load_images
from icnn.data.masks import block_mask, left_half_mask, random_pixel_mask
from icnn.data.mulan import label_count_from_xml, label_names_from_xml
from icnn.data.multilabel import MultilabelData, train_validation_split
from icnn.data.olivetti import join_halves, load_olivetti, olivetti_split, split_halves
from icnn.data.paths import default_data_dir, recorded_path

__all__ = [
    "MultilabelData",
    "block_mask",
    "default_data_dir",
    "join_halves",
    "label_count_from_xml",
    "label_names_from_xml",
    "left_half_mask",
    "load_images",
    "load_multilabel_arff",
    "load_olivetti",
    "olivetti_split",
    "random_pixel_mask",
    "recorded_path",
    "split_halves",
    "train_validation_split",
]
