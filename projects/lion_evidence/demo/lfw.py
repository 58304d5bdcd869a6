"""scikit-image's ``lfw_subset``: 200 real 25x25 grey crops, 100 faces from Labeled
Faces in the Wild and 100 non-face crops of natural images, shipped in the wheel
(``skimage.data.lfw_subset``). A second dataset no one here made, for the Lion-vs-AdamW
comparison. The split is fixed: 25 of each class held out (150 train, 50 val)."""
import numpy as np

from mmengine.registry import DATASETS
from .digits import ArrayDataset, stratified_split

VAL_PER_CLASS = 25


@DATASETS.register_module()
class LFWSubsetDataset(ArrayDataset):
    """``split='train'`` (150 crops) or ``'val'`` (50); label 1 is a face."""

    def __init__(self, split: str = 'train'):
        from skimage.data import lfw_subset
        x = lfw_subset().astype(np.float32)  # (200, 25, 25) in [0, 1]; faces first
        y = np.repeat(np.array([1, 0], dtype=np.int64), 100)
        super().__init__(split, x, y, *stratified_split(y, VAL_PER_CLASS),
                         classes=('non-face', 'face'))
