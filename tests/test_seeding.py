"""course.seeding: one seed, overridable for benchmarks."""

import numpy as np
import pytest

from course import seeding


@pytest.fixture(autouse=True)
def no_seed_variable(monkeypatch):
    monkeypatch.delenv(seeding.SEED_VARIABLE, raising=False)


def test_default_seed_makes_numpy_repeatable(capsys):
    assert seeding.seed_everything(7) == 7
    first = np.random.rand(3)
    seeding.seed_everything(7)
    np.testing.assert_array_equal(np.random.rand(3), first)
    assert capsys.readouterr().out == "Random seed: 7\nRandom seed: 7\n"


def test_variable_overrides_the_notebook_seed(monkeypatch, capsys):
    monkeypatch.setenv(seeding.SEED_VARIABLE, "3")
    assert seeding.seed_everything(42) == 3
    assert capsys.readouterr().out == "Random seed: 3 (from COURSE_SEED)\n"


def test_keras_weights_repeat_with_the_seed():
    import keras

    seeding.seed_everything(5)
    first = keras.layers.Dense(4)
    first.build((None, 3))
    seeding.seed_everything(5)
    second = keras.layers.Dense(4)
    second.build((None, 3))
    np.testing.assert_array_equal(first.kernel.numpy(), second.kernel.numpy())
