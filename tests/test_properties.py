"""Property-based: every generated spec either parses or is refused with a SpecError."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odernn.errors import SpecError
from odernn.simulate import sample_parameters
from odernn.spec import parse_spec

numbers = st.one_of(st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True, width=64))
values = st.one_of(numbers, st.lists(numbers, min_size=0, max_size=3), st.text(max_size=5),
                   st.booleans())


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def specs(draw):
    top = {k: draw(values) for k in draw(st.sets(st.sampled_from(
        ["n", "seed", "dt", "n_steps", "t_end", "dtype", "system", "nn"]), max_size=8))}
    params = {k: draw(values) for k in draw(st.sets(st.sampled_from(["eta", "x0", "v0", "eta2"])))}
    forcing = {k: draw(values) for k in draw(st.sets(st.sampled_from(
        ["F0", "omega", "phase", "K", "amplitude_sum"])))}
    forcing["family"] = draw(st.sampled_from(["none", "cosine", "random", "cos"]))
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    lines += ["[parameters]"] + [f"{k} = {toml_value(v)}" for k, v in params.items()]
    lines += ["[forcing]"] + [f"{k} = {toml_value(v)}" for k, v in forcing.items()]
    return "\n".join(lines)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_any_spec_parses_or_fails_cleanly(text):
    try:
        spec = parse_spec(text)
    except SpecError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert spec.dt > 0 and spec.n >= 1 and spec.n_steps >= 2
    params = sample_parameters(spec.with_overrides(n=min(spec.n, 3)), 0, min(spec.n, 3))
    for name, value in params.items():
        assert np.all(np.isfinite(value)), name
