"""Every trajectory's own random stream, for a whole block of trajectories at once.

Trajectory ``i`` of a dataset with seed ``s`` draws its parameters from
``Generator(PCG64(SeedSequence(s, spawn_key=(i,))))`` (docs/design.md): its numbers do not
depend on N, the block or the shard. Building that generator in Python costs more than
integrating a trajectory of a thousand steps (docs/performance.md). :class:`Streams`
computes the same numbers for a block of indices with array operations instead:
``SeedSequence``'s hash of the seed and the index, ``PCG64``'s seeding, and its 128-bit
linear congruential step with the XSL-RR output, in ``uint64`` arithmetic (a 128-bit state
as two 64-bit halves; the high half of a 64 x 64-bit product from 32-bit halves). The
results are numpy's own to the last bit (``tests/test_random_streams.py`` compares them).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

_M32 = np.uint64(0xFFFFFFFF)
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875  # SeedSequence's entropy-mixing hash
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED  # ... and its output hash
_MIX_L, _MIX_R = np.uint64(0xCA01F9DD), np.uint64(0x4973F715)
_POOL = 4  # SeedSequence's pool size, in 32-bit words
_MULT_HI, _MULT_LO = np.uint64(2549297995355413924), np.uint64(4865540595714422341)
"""PCG64's 128-bit multiplier, high and low halves."""


def _seed_words(seed: int) -> list[int]:
    """A non-negative integer as 32-bit words, least significant first (at least one)."""
    words = [seed & 0xFFFFFFFF]
    seed >>= 32
    while seed:
        words.append(seed & 0xFFFFFFFF)
        seed >>= 32
    return words


class _Hash:
    """SeedSequence's ``hashmix``: a running constant multiplied at every call."""

    def __init__(self, const: int, mult: int) -> None:
        self.const, self.mult = const, mult

    def __call__(self, value: np.ndarray) -> np.ndarray:
        value = value ^ np.uint64(self.const)
        self.const = (self.const * self.mult) & 0xFFFFFFFF
        value = (value * np.uint64(self.const)) & _M32
        return value ^ (value >> np.uint64(16))


def _mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    r = (_MIX_L * x - _MIX_R * y) & _M32
    return r ^ (r >> np.uint64(16))


def _pool(seed: int, index: np.ndarray) -> list[np.ndarray]:
    """The entropy pool (4 words) of ``SeedSequence(seed, spawn_key=(i,))`` for each ``i``."""
    run = _seed_words(seed)
    run += [0] * (_POOL - len(run))  # padded to the pool size when a spawn key follows
    entropy = [np.full(index.shape, np.uint64(w)) for w in run] + [index]
    hashmix = _Hash(_INIT_A, _MULT_A)
    mixer = [hashmix(entropy[i]) for i in range(_POOL)]
    for src in range(_POOL):
        for dst in range(_POOL):
            if src != dst:
                mixer[dst] = _mix(mixer[dst], hashmix(mixer[src]))
    for src in range(_POOL, len(entropy)):
        for dst in range(_POOL):
            mixer[dst] = _mix(mixer[dst], hashmix(entropy[src]))
    return mixer


def _generate_state(pool: list[np.ndarray], n_words: int) -> list[np.ndarray]:
    """``SeedSequence.generate_state(n_words // 2, np.uint64)``, as 64-bit words."""
    out_hash = _Hash(_INIT_B, _MULT_B)
    words32 = [out_hash(pool[i % _POOL]) for i in range(2 * n_words)]
    return [words32[2 * k] | (words32[2 * k + 1] << np.uint64(32)) for k in range(n_words)]


def _mulhi(a: np.ndarray, b: np.uint64) -> np.ndarray:
    """The high 64 bits of the 128-bit products ``a * b``."""
    a0, a1 = a & _M32, a >> np.uint64(32)
    b0, b1 = b & _M32, b >> np.uint64(32)
    p01, p10 = a0 * b1, a1 * b0
    mid = ((a0 * b0) >> np.uint64(32)) + (p01 & _M32) + (p10 & _M32)
    return a1 * b1 + (p01 >> np.uint64(32)) + (p10 >> np.uint64(32)) + (mid >> np.uint64(32))


class Streams:
    """The streams of trajectories ``indices`` of a dataset with ``seed``, all advanced together.

    ``random(k)`` gives each stream's next ``k`` uniform numbers in [0, 1), what
    ``generator.random(k)`` gives for that trajectory; :meth:`generators` hands out numpy
    generators at the streams' current positions for any other distribution.
    """

    def __init__(self, seed: int, indices: np.ndarray) -> None:
        index = np.asarray(indices)
        if seed < 0 or index.ndim != 1 or (index.size and not 0 <= index.min() <= index.max()
                                           < 2**32):
            raise ValueError("Streams need a seed >= 0 and 1-D indices in [0, 2**32)")
        s_hi, s_lo, q_hi, q_lo = _generate_state(_pool(seed, index.astype(np.uint64)), 4)
        one = np.uint64(1)
        self.inc_hi = (q_hi << one) | (q_lo >> np.uint64(63))  # (initseq << 1) | 1
        self.inc_lo = (q_lo << one) | one
        self.hi, self.lo = self.inc_hi.copy(), self.inc_lo.copy()  # one step from state 0
        self.lo = self.lo + s_lo  # + initstate
        self.hi = self.hi + s_hi + (self.lo < s_lo)
        self._step()

    def _step(self) -> None:
        """``state = state * MULT + inc`` (mod 2^128)."""
        hi = _mulhi(self.lo, _MULT_LO) + self.lo * _MULT_HI + self.hi * _MULT_LO
        lo = self.lo * _MULT_LO
        self.lo = lo + self.inc_lo
        self.hi = hi + self.inc_hi + (self.lo < lo)

    def _next64(self) -> np.ndarray:
        """Step, then the XSL-RR output: ``rotr(hi ^ lo, hi >> 58)``."""
        self._step()
        x, r = self.hi ^ self.lo, self.hi >> np.uint64(58)
        return (x >> r) | (x << ((np.uint64(64) - r) & np.uint64(63)))

    def random(self, k: int) -> np.ndarray:
        """The next ``k`` uniform numbers of every stream, shape ``(n, k)``."""
        out = np.empty((self.lo.size, k))
        for j in range(k):
            out[:, j] = (self._next64() >> np.uint64(11)) * (1.0 / 9007199254740992.0)
        return out

    def generators(self) -> Iterator[np.random.Generator]:
        """A numpy generator at each stream's current position, in order. One generator is
        reseated for every stream: each is valid until the next is taken. The streams here
        do not advance with it."""
        bit = np.random.PCG64(0)
        generator = np.random.Generator(bit)
        for hi, lo, inc_hi, inc_lo in zip(self.hi.tolist(), self.lo.tolist(),
                                          self.inc_hi.tolist(), self.inc_lo.tolist(), strict=True):
            bit.state = {"bit_generator": "PCG64", "has_uint32": 0, "uinteger": 0,
                         "state": {"state": hi << 64 | lo, "inc": inc_hi << 64 | inc_lo}}
            yield generator
