"""A small detection dataset that mmlion generates, the same bytes on every machine.

"Shapes": 128x128 RGB images of filled circles, squares and triangles on a textured
background, with COCO-format train and val annotation files, so MMDetection's own
``CocoDataset`` loads it and its ``CocoMetric`` scores it. It exists so that the main
job trains and evaluates a real detector on a fresh machine with no downloads. The
same drawings serve the other two tasks: a semantic mask per image (``{split}_masks``,
0 background, 1-3 the classes) for mmsegmentation, and a 32x32 crop of every shape,
in one folder per class (``{split}_crops/{class}``), for mmpretrain.
Generation is seeded and uses integer drawing only (OpenCV with anti-aliasing off),
so the images are identical wherever they are made.

Usage (``tools/run_main.sh`` runs it before training the demo)::

    python tools/dataset_converters/generate_shapes.py data/shapes

It writes only into a folder that does not exist, is empty, or is a copy it made
itself (its stamp, ``.mmlion-stamp.json``, lists every file with its SHA-256, and
every file still matches); any other folder is an error that names it, and every
file in it stays as it was. An intact copy with the same settings is left alone.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys
from typing import Dict, List, Tuple

import numpy as np

CLASSES = ('circle', 'square', 'triangle')
# Each class has its own hue family, jittered, so colour is a cue but not the rule.
_BASE_COLORS = {'circle': (220, 60, 60), 'square': (60, 200, 60), 'triangle': (70, 90, 230)}
DEFAULT_SPLITS = {'train': 480, 'val': 120}
IMAGE_SIZE = 128
CROP_SIZE = 32
VERSION = 2  # bump when the generator changes, so stale copies are regenerated
WHAT = 'the Shapes dataset'


def _draw_image(rng: np.random.Generator,
                size: int) -> Tuple[np.ndarray, np.ndarray, List[dict]]:
    """An image, its semantic mask, and its objects."""
    import cv2
    base = rng.integers(40, 200, size=3)
    image = np.empty((size, size, 3), dtype=np.int16)
    image[:] = base
    image += rng.integers(-25, 26, size=(size, size, 3), dtype=np.int16)
    image = np.clip(image, 0, 255).astype(np.uint8)
    mask = np.zeros((size, size), dtype=np.uint8)
    objects = []
    occupied: List[Tuple[int, int, int, int]] = []
    for _ in range(int(rng.integers(1, 5))):
        for _attempt in range(20):
            label = int(rng.integers(len(CLASSES)))
            extent = int(rng.integers(14, 44))
            x0 = int(rng.integers(0, size - extent))
            y0 = int(rng.integers(0, size - extent))
            box = (x0, y0, x0 + extent, y0 + extent)
            if all(box[2] <= o[0] or box[0] >= o[2] or box[3] <= o[1] or box[1] >= o[3]
                   for o in occupied):
                break
        else:
            continue
        occupied.append(box)
        color = tuple(int(np.clip(c + rng.integers(-30, 31), 0, 255))
                      for c in _BASE_COLORS[CLASSES[label]])
        x1, y1 = x0 + extent - 1, y0 + extent - 1
        name = CLASSES[label]
        for canvas, value in ((image, color), (mask, label + 1)):
            if name == 'circle':
                r = extent // 2
                cv2.circle(canvas, (x0 + r, y0 + r), r, value, -1, lineType=cv2.LINE_8)
            elif name == 'square':
                cv2.rectangle(canvas, (x0, y0), (x1, y1), value, -1, lineType=cv2.LINE_8)
            else:
                pts = np.array([[x0 + extent // 2, y0], [x0, y1], [x1, y1]], dtype=np.int32)
                cv2.fillPoly(canvas, [pts], value, lineType=cv2.LINE_8)
        if name == 'circle':
            x1, y1 = x0 + 2 * (extent // 2), y0 + 2 * (extent // 2)
        w, h = x1 - x0 + 1, y1 - y0 + 1
        objects.append(dict(category_id=label + 1, bbox=[x0, y0, w, h], area=w * h))
    return image, mask, objects


def _crop(image: np.ndarray, bbox: List[int]) -> np.ndarray:
    import cv2
    x0, y0, w, h = bbox
    return cv2.resize(image[y0:y0 + h, x0:x0 + w], (CROP_SIZE, CROP_SIZE),
                      interpolation=cv2.INTER_AREA)


def _write(root: str, splits: Dict[str, int], seed: int, size: int, quiet: bool) -> None:
    """Draw every split into the (new) folder ``root``."""
    import cv2
    os.makedirs(osp.join(root, 'annotations'))
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)]
    for split_index, (split, count) in enumerate(sorted(splits.items())):
        rng = np.random.default_rng([seed, split_index])
        for folder in (split, f'{split}_masks', *(f'{split}_crops/{c}' for c in CLASSES)):
            os.makedirs(osp.join(root, folder))
        images, annotations = [], []
        for image_id in range(1, count + 1):
            image, mask, objects = _draw_image(rng, size)
            file_name = f'{image_id:05d}.png'
            cv2.imwrite(osp.join(root, split, file_name), image[:, :, ::-1])
            cv2.imwrite(osp.join(root, f'{split}_masks', file_name), mask)
            images.append(dict(id=image_id, file_name=file_name, width=size, height=size))
            for index, obj in enumerate(objects):
                crop = _crop(image, obj['bbox'])[:, :, ::-1]
                cv2.imwrite(osp.join(root, f'{split}_crops', CLASSES[obj['category_id'] - 1],
                                     f'{image_id:05d}_{index}.png'), crop)
                annotations.append(dict(id=len(annotations) + 1, image_id=image_id,
                                        iscrowd=0, **obj))
        with open(osp.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
        if not quiet:
            print(f'shapes dataset: wrote {count} {split} images, {len(annotations)} boxes')


def generate(root: str, splits: Dict[str, int] = None, seed: int = 0,
             size: int = IMAGE_SIZE, quiet: bool = False) -> str:
    """Write the dataset under ``root`` unless an intact identical copy is there.

    Returns ``root``. Layout: ``root/{split}/NNNNN.png``,
    ``root/annotations/instances_{split}.json``, ``root/{split}_masks/NNNNN.png`` and
    ``root/{split}_crops/{class}/NNNNN_K.png``. Raises
    :class:`~mmlion.utils.ownership.NotOwnedError` (touching nothing) when ``root``
    holds anything mmlion did not generate.
    """
    from mmlion.utils.ownership import folder_state, stamp_folder
    root = osp.normpath(root)
    settings = dict(version=VERSION, splits=dict(DEFAULT_SPLITS if splits is None else splits),
                    seed=seed, size=size)
    state = folder_state(root, WHAT, settings)
    if state == 'current':
        return root
    # Drawn in a private folder and renamed into place, so that a reader never sees
    # a half-written copy.
    fresh = f'{root}.tmp-{os.getpid()}'
    _write(fresh, settings['splits'], seed, size, quiet)
    stamp_folder(fresh, WHAT, settings)
    if state == 'stale':  # mmlion's own copy, intact, made with other settings
        old = f'{root}.old-{os.getpid()}'
        os.rename(root, old)
        shutil.rmtree(old)
    elif osp.isdir(root):  # an empty folder (rmdir refuses anything else)
        os.rmdir(root)
    os.rename(fresh, root)
    return root


def main():
    parser = argparse.ArgumentParser(description='Generate the Shapes detection dataset')
    parser.add_argument('root', nargs='?', default='data/shapes')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    from mmlion.utils.ownership import NotOwnedError
    try:
        print(f'shapes dataset: {generate(args.root, seed=args.seed)} is ready')
    except NotOwnedError as e:
        sys.exit(f'generate_shapes.py: {e}')


if __name__ == '__main__':
    main()
