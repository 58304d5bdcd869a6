"""Small classification tasks on data that no one here made, for the Lion-vs-AdamW
evidence (``tools/analysis_tools/convergence_digits.py``, ``configs/lion/digits/``,
``configs/lion/lfw/``): scikit-learn's copy of the UCI handwritten digits, and
scikit-image's LFW subset of faces and non-faces."""
from .digits import DigitsAccuracy, DigitsDataset, DigitsMLP
from .lfw import LFWSubsetDataset

__all__ = ['DigitsAccuracy', 'DigitsDataset', 'DigitsMLP', 'LFWSubsetDataset']
