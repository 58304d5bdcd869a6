# RetinaNet R-50-FPN, 12 epochs, with Lion (lr 2e-5, weight decay 0.25; derivation in
# the schedule base). MMDetection trains it with SGD (lr 0.01).
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    '../../_base_/schedules/lion-lr2e-5_warmup-cosine_1x.py',
    'mmdet::_base_/default_runtime.py',
]

# Checkpoints that resume bit for bit (RNG states, partial accumulation) and are
# written atomically: mmlion.engine.ResumableCheckpointHook.
default_hooks = dict(checkpoint=dict(type='mmlion.ResumableCheckpointHook'))
