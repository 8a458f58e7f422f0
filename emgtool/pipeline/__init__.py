"""Detection pipeline: one causal, chunked loop for offline, batch and live use.

>>> from emgtool.pipeline import init_state, step, flush, finalize
"""

from emgtool.pipeline.core import PipelineState, flush, init_state, step
from emgtool.pipeline.finalize import finalize

__all__ = ["PipelineState", "init_state", "step", "flush", "finalize"]
