"""Which memory layout a batch of maps is in, so layers that build or add tensors keep it.

`train.py` and `predict.py` run models channels_last (NHWC: oneDNN and cuDNN convolutions are faster on it; on 2
CPU threads a demo training step of `cr4_ds` took 15-17% less time, of `plain` 28-31%); a model built by hand runs
the default NCHW. A layer that allocates its output or adds a parameter in the other layout forces a conversion copy
or a strided pass through memory.
"""

from __future__ import annotations

import torch


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """channels_last for NHWC maps, else the default NCHW (also for maps that are both, e.g. one channel)."""
    nhwc = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if nhwc else torch.contiguous_format
