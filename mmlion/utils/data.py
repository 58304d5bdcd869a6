"""Generate the datasets that mmlion ships as code before a run needs them."""
import os.path as osp

from mmengine.config import Config

from mmlion.datasets.shapes import generate as generate_shapes


def _dataset_roots(cfg: Config):
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = (cfg.get(key) or {}).get('dataset') or {}
        while 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset, ...
            dataset = dataset['dataset']
        if dataset.get('data_root'):
            yield dataset['data_root']


def prepare_generated_data(cfg: Config) -> None:
    """Generate the Shapes dataset wherever the config reads it from ``*/shapes/``.

    A no-op when an identical copy is already there, so every process may call it.
    """
    for root in sorted(set(_dataset_roots(cfg))):
        if osp.basename(osp.normpath(root)) == 'shapes':
            generate_shapes(root)
