"""Datasets that ship with mmlion (generated, so nothing is downloaded)."""
from .shapes import CLASSES as SHAPES_CLASSES
from .shapes import generate as generate_shapes

__all__ = ['SHAPES_CLASSES', 'generate_shapes']
