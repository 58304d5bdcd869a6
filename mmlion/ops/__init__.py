"""mmlion's kernels, side by side as mmcv keeps its ops: the C++ CPU kernels
(``csrc/``, wrapped by :mod:`.lion_cpu`), the Triton GPU kernels
(:mod:`.lion_triton_kernels`, launched by :mod:`.lion_triton`), the one loader of both
(:mod:`.loader`), how the C++ ones are compiled (:mod:`.build`) and what every
implementation shares (:mod:`.common`). :mod:`mmlion.optim` picks among them; nothing
here imports the optimizer.
"""
