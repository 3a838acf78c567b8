"""Random draws that depend on the seed alone: derived seeds, and a scope that seeds the global generators
for code that only uses them (captum draws from torch's and numpy's) and puts them back afterwards."""
from __future__ import annotations

import contextlib
import zlib
from typing import Iterator


def derive_seed(seed: int, *keys: object) -> int:
    """A 32-bit seed for one use of `seed`, distinct per key path (e.g. the method and the batch), stable across runs."""
    import numpy as np

    words = [int(seed) & 0xFFFFFFFF, *(zlib.crc32(str(key).encode()) for key in keys)]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Within the block, torch's (CPU and CUDA) and numpy's global generators start from `seed`; after it, they are
    as they were, so nothing outside sees a draw or a reseed."""
    import numpy as np
    import torch

    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    numpy_state = np.random.get_state()
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(numpy_state)
