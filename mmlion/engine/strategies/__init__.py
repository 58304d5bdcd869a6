"""mmlion's strategies for MMEngine's FlexibleRunner."""
from .fsdp import FSDPStrategy

__all__ = ['FSDPStrategy']
