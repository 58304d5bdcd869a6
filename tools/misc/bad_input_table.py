"""Print docs/bad_input.md: the bad-input table of tests/test_bad_input.py, with the
messages each case gets now. Run from the repository root:
`python tools/misc/bad_input_table.py` (writes docs/bad_input.md)."""
import sys, pathlib, tempfile
sys.path.insert(0, 'tests')
import test_bad_input as t
INPUT = {
 'lr-negative': '`Lion(params, lr=-1e-4)`', 'lr-string': "`lr='1e-4'` (a string from a config)",
 'lr-nan': '`lr=float("nan")`', 'lr-tensor-shape': '`lr=torch.ones(2)`',
 'betas-length': '`betas=(0.9,)`', 'betas-one': '`betas=(1.0, 0.99)`',
 'betas-negative': '`betas=(0.9, -0.1)`', 'betas-scalar': '`betas=0.9`',
 'wd-negative': '`weight_decay=-0.1`', 'wd-string': "`weight_decay='0.1'`",
 'unknown-keyword': "`eps=1e-8` left over from AdamW", 'state-dtype-int': '`state_dtype=torch.int8`',
 'state-dtype-name': "`state_dtype='bf17'`", 'flag-type': "`maximize='yes'`",
 'fused-and-foreach': '`fused=True, foreach=True`', 'max-skips': '`max_consecutive_skips=0`',
 'decoupled-zero-lr': '`lr=0, decoupled_weight_decay=True`',
 'complex-state-dtype': 'complex parameter with `state_dtype=bfloat16`',
 'sparse-grad': 'a sparse gradient at `step()`', 'param-in-two-groups': 'one parameter in two param groups',
 'nonfinite-in-a-row': 'NaN gradients in `max_consecutive_skips` steps in a row',
 'state-of-adamw': "`load_state_dict` of AdamW's state", 'state-shape': 'state saved for other shapes',
 'state-groups': 'state saved with another number of groups',
 'zero-without-dist': '`mmlion.ZeroRedundancyOptimizer` without torchrun',
 'config-lr': '`optim_wrapper.optimizer.lr=-4e-4`', 'config-unknown-keyword': '`optim_wrapper.optimizer.eps=1e-8`',
 'config-betas': '`optim_wrapper.optimizer.betas=(0.9, 0.99, 0.1)`',
 'config-unknown-type': "`optim_wrapper.optimizer.type='Loin'`",
 'zero-unknown-type': "ZeRO with `optimizer_type='Loin'`",
 'no-custom-imports': "a Lion config that forgets `custom_imports`",
 'decay-mult-without-wd': '`paramwise_cfg` decay multipliers, no `weight_decay`',
 'custom-key-decay-mult-without-wd': '`custom_keys` `decay_mult`, no `weight_decay`',
 'accumulative-counts': '`accumulative_counts=0`', 'clip-grad': '`clip_grad=dict(max_norm=-1)`',
 'missing-ann-file': 'an annotation file that is not there', 'missing-image-folder': 'an image folder that is not there',
 'resume-missing-file': '`--resume` a checkpoint that is not there',
 'resume-truncated': '`--resume` a truncated checkpoint', 'resume-corrupt': '`--resume` a corrupt file',
 'resume-auto-truncated': '`--resume` (auto) when `last_checkpoint` names a truncated file',
 'resume-other-optimizer': "`--resume` an AdamW run's checkpoint with Lion",
 'train-tool-truncated': '`tools/train.py CONFIG --resume TRUNCATED.pth`',
 'clip-grad-not-dict': "`clip_grad='max_norm=1'` (a string)",
 'guard-twice': '`GuardedOptimWrapper` around `Lion(skip_nonfinite=True)`',
 'fused-on-meta': '`fused=True` with meta tensors (or DTensors)',
 'generate-into-users-folder': "`generate_shapes.py` into a user's folder named `shapes/`",
 'foreign-checkpoint-in-work-dir': 'a checkpoint mmlion did not write, where it saves one',
 'lr-times-wd': '`lr=1e4, weight_decay=0.5` (`lr * weight_decay >= 1`)',
 'differentiable': '`differentiable=True`',
 'config-lr-typo': '`optim_wrapper.optimizer.lr=1e4` (a typo for 1e-4)',
 'clip-grad-norm-type': "`clip_grad=dict(max_norm=1, norm_type='l2')`",
 'paramwise-negative-lr-mult': "`paramwise_cfg.custom_keys={'backbone': dict(lr_mult=-0.1)}`",
 'train-tool-resume-folder': '`tools/train.py CONFIG --resume WORK_DIR` (a folder)',
 'load-from-missing': '`load_from` a checkpoint that is not there (no resume)',
 'load-from-truncated': '`load_from` a truncated checkpoint (no resume)',
 'dist-train-zero-processes': '`tools/dist_train.sh CONFIG 0`',
}
WHERE = {}
for c in t.CASES:
    i = c.id
    if i.startswith(('config', 'zero-unknown', 'no-custom', 'decay', 'custom-key', 'accum', 'clip',
                     'missing', 'resume', 'load-from', 'paramwise')):
        WHERE[i] = '`check_config` (tools/train.py), before the Runner'
    elif i.startswith('train-tool'):
        WHERE[i] = 'tools/train.py, before the Runner'
    elif i == 'dist-train-zero-processes':
        WHERE[i] = 'tools/dist_train.sh, before torchrun'
    elif i in ('state-of-adamw', 'state-shape', 'state-groups'):
        WHERE[i] = '`Lion.load_state_dict`, before any change'
    elif i in ('sparse-grad', 'nonfinite-in-a-row'):
        WHERE[i] = '`Lion.step`, before any write'
    elif i == 'zero-without-dist':
        WHERE[i] = 'ZeRO constructor'
    elif i == 'guard-twice':
        WHERE[i] = '`GuardedOptimWrapper` constructor'
    elif i == 'fused-on-meta':
        WHERE[i] = '`lion(..., fused=True)`, before the kernel'
    elif i == 'generate-into-users-folder':
        WHERE[i] = 'the Shapes generator, before any write'
    elif i == 'foreign-checkpoint-in-work-dir':
        WHERE[i] = "`ResumableCheckpointHook`'s writer, before any write"
    else:
        WHERE[i] = '`Lion(...)` / `add_param_group`'
rows = []
for c in t.CASES:
    d = pathlib.Path(tempfile.mkdtemp())
    ctx = t.Context(d)
    prep = c.setup(ctx) if c.setup else None
    try:
        c.run(ctx, prep)
    except BaseException as e:
        msg = str(e).replace(str(d) + '/', '').replace('mmlion.cli.config_check.ConfigError: ', '')
        if len(msg) > 170:
            msg = msg[:167].rstrip() + '...'
        msg = msg.replace('|', '\\|')
        rows.append(f'| `{c.id}` | {INPUT[c.id]} | {WHERE[c.id]} | `{type(e).__name__}`: {msg} |')
head = '''# Bad input and the errors it gets

Each row is a wrong setting or file, where mmlion catches it, and the message (cut
at 170 characters). Every message names the key or file and the value. In every row
the parameters, the optimizer state and the files on disk are left as they were:
`tests/test_bad_input.py` walks this table, checks each message and compares
parameters, `exp_avg` and file hashes before and after. Regenerate the table with
`python tools/misc/bad_input_table.py` after changing a message.

`check_config` runs in `tools/train.py` before the Runner is built, so config errors
come in about a second, before data loading or a training step. Call it yourself
(`from mmlion.cli import check_config`) when you build a Runner in Python.

| id | bad input | caught by | error |
| --- | --- | --- | --- |
'''
with open('docs/bad_input.md', 'w') as f:
    f.write(head + '\n'.join(rows) + '\n')
print(f'wrote docs/bad_input.md: {len(rows)} rows')
