"""A small classification task on data that no one here made: scikit-learn's copy of
the UCI handwritten digits, for the Lion-vs-AdamW convergence check
(``tools/analysis_tools/convergence_digits.py``, ``configs/lion/digits/``)."""
from .digits import DigitsAccuracy, DigitsDataset, DigitsMLP

__all__ = ['DigitsAccuracy', 'DigitsDataset', 'DigitsMLP']
