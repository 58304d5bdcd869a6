"""mmlion's strategies for MMEngine's FlexibleRunner: MMEngine 0.10.7's FSDP and
DeepSpeed strategies, fixed for current torch and deepspeed and for CPU-only machines."""
from .deepspeed import DeepSpeedStrategy
from .fsdp import FSDPStrategy

__all__ = ['DeepSpeedStrategy', 'FSDPStrategy']
