"""Route datasets: synthetic routes, NeuroGPR, window datasets built from bags, and feature sets for training."""

from hstnn_ros.datasets.errors import DatasetError
from hstnn_ros.datasets.features import (
    SPLIT_NAMES,
    SPLIT_TEST,
    SPLIT_TRAIN,
    SPLIT_VAL,
    FeatureSet,
    load_feature_set,
    save_feature_set,
)

__all__ = [
    "SPLIT_NAMES",
    "SPLIT_TEST",
    "SPLIT_TRAIN",
    "SPLIT_VAL",
    "DatasetError",
    "FeatureSet",
    "load_feature_set",
    "save_feature_set",
]
