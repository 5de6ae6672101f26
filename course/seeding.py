"""One seed for Python, NumPy and TensorFlow, so that a run can be repeated.

Introduced in ``02_mnist_mlp``. ``COURSE_SEED`` overrides the notebook's seed:
the benchmark (``make bench``) runs each reference solution under several seeds.
"""

from __future__ import annotations

import os

SEED_VARIABLE = "COURSE_SEED"


def seed_everything(default: int = 42) -> int:
    """Seed Python, NumPy and the Keras backend with ``$COURSE_SEED`` or ``default``; return the seed."""
    import keras  # imported here: TensorFlow takes seconds to import

    value = os.environ.get(SEED_VARIABLE, "").strip()
    seed = int(value) if value else default
    keras.utils.set_random_seed(seed)
    print(f"Random seed: {seed}" + (f" (from {SEED_VARIABLE})" if value else ""))
    return seed
