"""The block-wise trajectory streams are numpy's per-trajectory generators to the last bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from odernn.data.random_streams import Streams


def numpy_stream(seed: int, index: int) -> np.random.Generator:
    """Trajectory ``index``'s stream as the design defines it."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(index,))))


@given(seed=st.integers(0, 2**200), index=st.lists(st.integers(0, 2**32 - 1), min_size=1,
                                                    max_size=8))
@example(seed=0, index=[0, 1, 2**32 - 1])
@example(seed=2**128 + 5, index=[7])  # more seed words than the pool holds
def test_uniforms_equal_numpy(seed: int, index: list[int]) -> None:
    streams = Streams(seed, np.array(index))
    first, second = streams.random(3), streams.random(6)
    for row, i in enumerate(index):
        reference = numpy_stream(seed, i)
        np.testing.assert_array_equal(first[row], reference.random(3))
        np.testing.assert_array_equal(second[row], reference.random(6))


def test_generators_continue_each_stream() -> None:
    """After uniform draws, the handed-out generators continue every stream (exponentials
    included, whose draws consume a variable number of words)."""
    index = np.arange(50, 90)
    streams = Streams(12345, index)
    streams.random(4)
    for i, generator in zip(index, streams.generators(), strict=True):
        reference = numpy_stream(12345, int(i))
        reference.random(4)
        np.testing.assert_array_equal(generator.exponential(size=5), reference.exponential(size=5))
        assert generator.random() == reference.random()


def test_a_stream_does_not_depend_on_its_block() -> None:
    whole = Streams(3, np.arange(100)).random(5)
    np.testing.assert_array_equal(Streams(3, np.arange(40, 60)).random(5), whole[40:60])


@pytest.mark.parametrize("seed, index", [(-1, [0]), (0, [-1]), (0, [2**32]), (0, [[0]])])
def test_bad_streams_refused(seed: int, index: list) -> None:
    with pytest.raises(ValueError):
        Streams(seed, np.array(index))
