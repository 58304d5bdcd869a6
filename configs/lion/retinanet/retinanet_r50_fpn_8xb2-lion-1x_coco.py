# RetinaNet R-50-FPN, 12 epochs, with Lion. MMDetection trains it with SGD (lr 0.01);
# the AdamW recipe for ResNet-50 detectors at a total batch of 16 is lr 1e-4, weight
# decay 0.05 (MMDetection's DETR family). Lion by the paper's rule, at ratio 5 for a
# convolutional detector: lr 2e-5, weight decay 0.25 (lr * wd = 5e-6 as AdamW's).
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    '../../_base_/schedules/lion_warmup-cosine.py',
    'mmdet::_base_/default_runtime.py',
]

base_lr = 2e-5
optim_wrapper = dict(optimizer=dict(lr=base_lr, weight_decay=0.25))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=500),
    dict(
        type='CosineAnnealingLR',
        eta_min=base_lr * 0.05,
        begin=0,
        end=12,
        T_max=12,
        by_epoch=True,
        convert_to_iter_based=True)
]
auto_scale_lr = dict(base_batch_size=16)
