"""Small classification tasks on data that no one here made, for the Lion-vs-AdamW
evidence (``projects/lion_evidence/tools/convergence_digits.py``, ``configs/digits/``,
``configs/lfw/``): scikit-learn's copy of the UCI handwritten digits, and
scikit-image's LFW subset of faces and non-faces. Importing this package registers
``DigitsDataset``, ``LFWSubsetDataset``, ``DigitsMLP`` and ``DigitsAccuracy`` in
MMEngine's registries (``custom_imports=dict(imports=['projects.lion_evidence.demo'])``)."""
from .digits import DigitsAccuracy, DigitsDataset, DigitsMLP
from .lfw import LFWSubsetDataset

__all__ = ['DigitsAccuracy', 'DigitsDataset', 'DigitsMLP', 'LFWSubsetDataset']
