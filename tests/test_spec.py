"""Dataset specs: the built-ins parse, and every kind of bad spec is refused by name."""

from __future__ import annotations

import math
import os
import re

import numpy as np
import pytest

from odernn.data.spec import builtin_names, load_spec, parse_spec
from odernn.errors import SpecError

GOOD = """
n = 4
seed = 1
dt = 0.1
n_steps = 20
[parameters]
eta = [0.1, 0.2]
x0 = 1.0
v0 = [-1, 1]
[forcing]
family = "cosine"
F0 = 0.5
omega = [0.5, 2.0]
"""


def test_builtins_parse_with_the_documented_sizes():
    assert set(builtin_names()) >= {
        "train",
        "test",
        "test-ood",
        "random-forcing",
        "sine",
        "noisy-sine",
    }
    train, test, ood = load_spec("train"), load_spec("test"), load_spec("test-ood")
    assert (train.n, train.dt, train.n_steps) == (256, 0.05, 1000)
    assert (test.n, ood.n) == (64, 64) and len({train.seed, test.seed, ood.seed}) == 3
    assert train.parameters["eta"].low == 0.05 and train.parameters["eta"].high == 0.5
    assert (ood.forcing_parameters["omega"].low, ood.forcing_parameters["F0"].high) == (2.0, 1.5)
    rf = load_spec("random-forcing")
    assert rf.forcing == "random" and rf.K == 3 and rf.n == 256
    sine = load_spec("sine")
    assert math.isclose(sine.t_end, 4 * math.pi) and sine.n_steps == 1000
    noisy = load_spec("noisy-sine")
    assert (noisy.dt, noisy.n_steps, noisy.series["noise"], noisy.series["frequency"]) == (
        1.0,
        1000,
        2.0,
        0.02,
    )


def test_duffing_test_ood_is_duffing_test_driven_above_the_training_amplitudes():
    train, test, ood = (load_spec(f"duffing-{n}") for n in ("train", "test", "test-ood"))
    assert (ood.system, ood.n, ood.dt, ood.n_steps) == ("duffing", 64, 0.05, 1000)
    assert len({train.seed, test.seed, ood.seed, load_spec("duffing-chaos").seed}) == 4
    assert ood.parameters == test.parameters == train.parameters
    assert ood.forcing == test.forcing == "cosine"
    assert ood.forcing_parameters["omega"] == train.forcing_parameters["omega"]
    F0, trained = ood.forcing_parameters["F0"], train.forcing_parameters["F0"]
    assert (F0.low, F0.high) == (trained.high, 1.5 * trained.high)


def test_duffing_chaos_drives_is_duffing_chaos_at_four_amplitudes_of_its_range():
    chaos, drives = load_spec("duffing-chaos"), load_spec("duffing-chaos-drives")
    assert drives.parameters == chaos.parameters and drives.seed != chaos.seed
    F0, ranged = drives.forcing_parameters["F0"], chaos.forcing_parameters["F0"]
    assert len(F0.values) == 4 and (F0.low, F0.high) == (ranged.low, ranged.high)
    assert drives.forcing_parameters["omega"] == chaos.forcing_parameters["omega"]


def test_a_parameter_listed_as_values_draws_only_those_and_leaves_the_others_alone():
    from odernn.data.simulate import sample_parameters

    ranged = parse_spec(GOOD)
    listed = parse_spec(GOOD.replace("eta = [0.1, 0.2]", "eta = { values = [0.2, 0.1, 0.15] }"))
    assert listed.parameters["eta"].values == (0.1, 0.15, 0.2)
    assert str(listed.parameters["eta"]) == "{0.1, 0.15, 0.2}"
    a, b = sample_parameters(ranged, 0, 300), sample_parameters(listed, 0, 300)
    counts = {v: int(np.sum(b["eta"] == v)) for v in (0.1, 0.15, 0.2)}
    assert sum(counts.values()) == 300 and min(counts.values()) > 70  # each about 100
    # the draw that was uniform picks the value of its third of [0, 1)
    third = np.floor((a["eta"] - 0.1) / 0.1 * 3).astype(int)
    assert np.array_equal(b["eta"], np.array([0.1, 0.15, 0.2])[third])
    assert all(np.array_equal(a[k], b[k]) for k in a if k != "eta")
    one = parse_spec(GOOD.replace("eta = [0.1, 0.2]", "eta = { values = [0.3, 0.3] }"))
    assert one.parameters["eta"].fixed and one.parameters["eta"].low == 0.3


def test_a_good_spec_parses_fixed_and_ranged_values():
    spec = parse_spec(GOOD)
    assert spec.parameters["x0"].fixed and not spec.parameters["v0"].fixed
    assert spec.integrator == {"name": "scipy", "method": "DOP853", "rtol": 1e-12, "atol": 1e-14}
    assert spec.text == GOOD


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("dt = 0.1", "dt = 0"), "dt must be > 0"),
        (("dt = 0.1", "dt = -1.0"), "dt must be > 0"),
        (("dt = 0.1", "dt = 1e308"), "dt * (n_steps - 1) finite"),  # 19 steps overflow
        (("dt = 0.1", "dt = 1e-320"), "a normal float"),  # it was stored as 9.99989e-321
        (("n_steps = 20", "n_steps = 1"), "n_steps must be >= 2"),
        (("eta = [0.1, 0.2]", "eta = [0.3, 0.2]"), "low > high"),
        (('family = "cosine"', 'family = "cosin"'), "did you mean 'cosine'"),
        (("seed = 1", "sed = 1"), "unknown key 'sed' (did you mean 'seed'?)"),
        (("n_steps = 20", "n_steps = 20\nintegrator = {name = 'eulr'}"), "did you mean 'euler'"),
        (("n = 4", "n = [4"), "malformed TOML"),
        # SciPy raises an rtol below 100 eps to it; the file recorded the 1e-20 never used
        (("n_steps = 20", "n_steps = 20\nintegrator = {rtol = 1e-20}"),
         "floor 100 eps = 2.220446049250313e-14, got 1e-20"),
        (("n_steps = 20", "n_steps = 20\nintegrator = {atol = 0}"), "atol must be > 0, got"),
        (("n = 4", "n = 2.5"), "n must be an integer"),
        (("n = 4", "n = 4\nname = 7"), "name must be a string, got 7"),  # was stored as "7"
        (("n = 4", "n = 4\ndescription = [1]"), "description must be a string, got [1]"),
        (("eta = [0.1, 0.2]", "eta = -0.1"), "eta must be >= 0"),
        (("eta = [0.1, 0.2]", "eta = { values = [0.1, -0.2] }"), "eta must be >= 0"),
        (("eta = [0.1, 0.2]", "eta = { values = [] }"), "as a table must be { values"),
        (("eta = [0.1, 0.2]", "eta = { value = [0.1] }"), "as a table must be { values"),
        (("eta = [0.1, 0.2]", "eta = { values = [0.1, 'a'] }"), "eta must be a finite number"),
        (("x0 = 1.0", ""), "needs x0"),
        (("eta = [0.1, 0.2]", "eta = [0.1, 0.2, 0.3]"), "eta must be a number, [low, high]"),
        (("eta = [0.1, 0.2]", "eta = [0.1]"), "eta must be a number, [low, high]"),
        (("eta = [0.1, 0.2]", "eta = nan"), "eta must be a finite number"),
        (("x0 = 1.0", "x0 = inf"), "x0 must be a finite number"),
        (("omega = [0.5, 2.0]", "omega = [-1.0, 2.0]"), "omega must be >= 0"),
        (('family = "cosine"\nF0 = 0.5\nomega = [0.5, 2.0]',
          'family = "random"\nK = 2\namplitude_sum = [-1.0, 1.0]'), "amplitude_sum must be >= 0"),
        (("dt = 0.1", "dt = 0.1\nt_end = 1.9"), "t_end"),  # both set the grid: neither wins
        (("omega = [0.5, 2.0]", "omega = [0.5, 2.0]\n[series]\nfrequency = 2.0"),
         "section [series] does not apply to system 'oscillator'"),
    ],
)
def test_bad_specs_are_refused_with_a_message_naming_the_problem(edit, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        parse_spec(GOOD.replace(*edit, 1))


def test_unknown_builtin_and_missing_file():
    with pytest.raises(SpecError, match="did you mean 'train'"):
        load_spec("trian")
    with pytest.raises(SpecError, match="not found"):
        load_spec("no/such/spec.toml")


def test_a_sine_spec_refuses_oscillator_sections():
    text = load_spec("sine").text + "\n[forcing]\nfamily = 'cosine'\n"
    with pytest.raises(SpecError, match=re.escape("section [forcing] does not apply to system")):
        parse_spec(text)
    with pytest.raises(SpecError, match="noise"):
        parse_spec(load_spec("sine").text.replace("noise = 0.0", "noise = -0.1"))


def test_a_sine_spec_without_an_integrator_is_sampled_exactly():
    """The default integrator is scipy, which a sine series refuses: its default is exact (a
    spec written from the docs, without [integrator], was refused)."""
    spec = parse_spec('system = "sine"\nn = 2\nseed = 0\ndt = 0.1\nn_steps = 50\n')
    assert spec.integrator == {"name": "exact"}
    assert parse_spec(GOOD).integrator["name"] == "scipy"  # an oscillator's stays scipy
    with pytest.raises(SpecError, match="integrator must be 'exact'"):
        parse_spec('system = "sine"\nn = 2\nseed = 0\ndt = 0.1\nn_steps = 50\n'
                   '[integrator]\n'
                   'name = "rk4"\n')


def test_spec_files_that_are_not_small_text_files_are_named_for_what_they_are(tmp_path):
    bom = tmp_path / "bom.toml"
    bom.write_bytes("\ufeff".encode() + GOOD.encode())
    assert load_spec(bom).n == 4  # a byte-order mark (Windows editors) is not an error
    (tmp_path / "dir.toml").mkdir()
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)  # opening it to read would block: it must be refused unopened
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (2 << 20))
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b"# caf\xe9\n" + GOOD.encode())
    for path, message in ((tmp_path / "dir.toml", "is a directory"),
                          (fifo, "is not a regular file"), (big, "at most 1048576 bytes"),
                          (latin, "is not UTF-8 text"), (tmp_path / "none.toml", "not found")):
        with pytest.raises(SpecError, match=re.escape(message)):
            load_spec(path)


def test_overrides_are_validated():
    spec = load_spec("train")
    assert spec.with_overrides(n=10, integrator="rk4").integrator == {"name": "rk4"}
    with pytest.raises(SpecError, match="n must be >= 1, got 0"):
        spec.with_overrides(n=0)
    with pytest.raises(SpecError, match="did you mean 'euler'"):
        spec.with_overrides(integrator="eulr")


@pytest.mark.parametrize(("change", "message"), [
    ({"zzz": 1}, "with_overrides: zzz: no such key in spec 'train'"),
    ({"integrator": {"name": "zzz"}}, "unknown integrator {'name': 'zzz'}; allowed: euler"),
    ({"integrator": 3}, "unknown integrator 3; allowed"),
    ({"family": "foo"}, "with_overrides: family: unknown forcing.family 'foo'"),
    ({"parameters": {"eta": 1}}, "with_overrides: parameters: no such key"),
    ({"compression": "zzz"}, "compression must be 'gzip' or 'none', got 'zzz'"),
    ({"K": -3}, "with_overrides: K: no such key"),  # a cosine has no K
    ({"family": "random", "K": -3}, "forcing.K must be >= 1, got -3"),
    ({"eta": [0.5, 0.1]}, "eta range has low > high"),
    ({"eta": 1j}, "with_overrides: 1j is a complex, not a value a spec takes"),
    ({"dt": 0.1, "t_end": 5.0}, "with_overrides: dt and t_end both set the time grid"),
    ({"system": "zzz"}, "unknown system 'zzz'; allowed: oscillator"),
])
def test_every_override_is_checked_as_a_spec_files_key_is(change, message):
    """The Python method took a few keys' checks by hand: an unknown key raised TypeError
    (dataclasses.replace), an integrator table KeyError, and a forcing, parameters,
    compression or K it did not know were taken unchecked and failed at simulation, or not
    at all. It now goes through --set's parse, as the command line does."""
    with pytest.raises(SpecError, match=re.escape(message)):
        load_spec("train").with_overrides(**change)


def test_overrides_take_numpy_numbers_tuples_and_any_key_of_the_spec():
    """An HDF5 file's attributes are numpy numbers (the quickstart passes one back)."""
    spec = load_spec("train").with_overrides(n=np.int64(7), dt=np.float32(0.25), eta=(0.1, 0.2),
                                             rtol=1e-9, seed=None)
    assert (spec.n, spec.dt, spec.seed) == (7, 0.25, load_spec("train").seed)
    assert type(spec.n) is int and str(spec.parameters["eta"]) == "[0.1, 0.2]"
    assert spec.integrator["rtol"] == 1e-9
    assert spec.with_overrides(system="duffing", beta=1.0, alpha=-1.0).system == "duffing"


@pytest.mark.parametrize("name", builtin_names())
def test_effective_spec_round_trips_through_toml(name):
    spec = load_spec(name)
    if spec.system == "oscillator":
        spec = spec.with_overrides(n=7, seed=99, integrator="rk4")
    again = parse_spec(spec.to_toml(), source=spec.source)
    assert again.text == spec.to_toml()
    fields = ("name", "system", "n", "seed", "dt", "n_steps", "integrator", "parameters",
              "forcing", "forcing_parameters", "K", "series", "dtype", "compression")
    assert all(getattr(again, f) == getattr(spec, f) for f in fields)


def test_a_file_reproduces_itself_from_its_stored_spec(tmp_path):
    from odernn.data.simulate import simulate
    from odernn.data.store import read_trajectories

    spec = load_spec("test").with_overrides(n=5, seed=42, integrator="exact")
    simulate(spec, tmp_path / "a.h5")
    first = read_trajectories(tmp_path / "a.h5")
    simulate(parse_spec(first.attrs["spec"]), tmp_path / "b.h5")
    second = read_trajectories(tmp_path / "b.h5")
    assert first.n == 5 and np.array_equal(first.x, second.x) and np.array_equal(first.F, second.F)


def test_one_choice_check_suggests_the_closest_name():
    from odernn.checks import check_choice

    assert check_choice("lstm", ("rnn", "lstm"), "--model") == "lstm"
    with pytest.raises(SpecError, match=re.escape("--model 'lstn' unknown (did you mean 'lstm'?); "
                                                  "allowed: rnn, lstm")):
        check_choice("lstn", ("rnn", "lstm"), "--model")
    with pytest.raises(SpecError, match=re.escape("--model 'qqq' unknown; allowed: rnn, lstm")):
        check_choice("qqq", ("rnn", "lstm"), "--model")


@pytest.mark.parametrize("name", builtin_names())
def test_every_built_in_spec_goes_through_the_command_lines_settings(name):
    """``odernn simulate NAME --set ...`` rewrites the spec as TOML and parses it again: every
    built-in spec survives it (ranges given by their values included), changed only where
    set."""
    from odernn.data.spec_settings import with_settings

    spec = load_spec(name)
    again = with_settings(spec, sets={"n": 3})
    assert again.n == 3 and again.to_toml() == spec.with_overrides(n=3).to_toml()


def test_the_integrators_options_are_set_by_their_names():
    """``--set rtol=...`` reached no [integrator] key ("no such key") though the help said any
    key of the spec; ``integrator`` sets the name and resets the options set before it."""
    from odernn.data.spec_settings import with_settings

    spec = with_settings(load_spec("test"), sets={"rtol": 1e-8, "method": "RK45"})
    assert spec.integrator == {"name": "scipy", "method": "RK45", "rtol": 1e-8, "atol": 1e-14}
    assert with_settings(spec, sets={"integrator": "rk4"}).integrator == {"name": "rk4"}
    with pytest.raises(SpecError, match="integrator 'rk4' takes no options"):
        with_settings(spec, sets={"integrator": "rk4", "rtol": 1e-8})
    with pytest.raises(SpecError, match="did you mean 'rtol'"):
        with_settings(spec, sets={"rtl": 1e-8})
    # the name first whatever the order: an option given before it was dropped silently
    assert with_settings(spec, sets={"rtol": 1e-6, "integrator": "scipy"}).integrator[
        "rtol"] == 1e-6
    with pytest.raises(SpecError, match="integrator 'rk4' takes no options"):
        with_settings(spec, sets={"rtol": 1e-8, "integrator": "rk4"})


def test_simulate_refuses_a_key_set_twice(tmp_path, capsys):
    """``--n 7 --set n=8`` kept 7 silently; train refuses the same conflict."""
    from odernn.cli.app import main

    for flag, key in (("--n", "n"), ("--n-steps", "n_steps"), ("--seed", "seed"),
                      ("--integrator", "integrator")):
        value = "rk4" if key == "integrator" else "9"
        assert main(["simulate", "test", "-o", str(tmp_path / "x.h5"), flag, value, "--set",
                     f"{key}={value}", "-q"]) == 2
        assert f"and {flag} both set {key}; give one" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()
    # a --config file's value is no flag typed: --set wins over it, as a flag would
    (tmp_path / "c.toml").write_text("n = 5\n")
    assert main(["simulate", "test", "--config", str(tmp_path / "c.toml"), "--set", "n=3",
                 "--n-steps", "20", "-o", str(tmp_path / "x.h5"), "-q"]) == 0
    from odernn.data.store import read_trajectories

    assert read_trajectories(tmp_path / "x.h5").n == 3


def test_setting_the_grids_end_replaces_its_step():
    from odernn.data.spec_settings import with_settings

    spec = with_settings(load_spec("sine"), sets={"t_end": 10.0})
    assert spec.dt * (spec.n_steps - 1) == pytest.approx(10.0)
    assert with_settings(spec, sets={"dt": 0.5}).dt == 0.5


def test_a_name_beyond_the_basic_plane_round_trips():
    """An emoji or a mathematical letter in a description: its JSON escape is a surrogate
    pair, which TOML refuses, and simulate ended in a traceback (exit 1)."""
    text = 'description = "run \\U0001F600 with \U0001D6C8"\n' + GOOD
    spec = parse_spec(text, source="emoji.toml")
    again = parse_spec(spec.to_toml(), source=spec.source)
    assert again.description == "run \U0001F600 with \U0001D6C8"
    changed = spec.with_overrides(n=5)  # through --set's TOML too
    assert parse_spec(changed.to_toml(), source="x").description == again.description


def test_set_keeps_the_same_integrators_options_and_refuses_two_grids():
    """--integrator scipy on a spec of scipy's RK45 at rtol 1e-6 reset it to DOP853 at 1e-12;
    --set dt and --set t_end together kept whichever came last."""
    text = GOOD + '[integrator]\nname = "scipy"\nmethod = "RK45"\nrtol = 1e-6\natol = 1e-8\n'
    spec = parse_spec(text, source="s.toml")
    same = spec.with_overrides(integrator="scipy")
    assert same.integrator == spec.integrator and same.integrator["method"] == "RK45"
    assert spec.with_overrides(integrator="rk4").integrator == {"name": "rk4"}
    from odernn.data.spec_settings import with_settings

    assert with_settings(spec, sets={"integrator": "scipy"}).integrator == spec.integrator
    with pytest.raises(SpecError, match="--set dt and t_end both set the time grid"):
        with_settings(spec, sets={"dt": 0.1, "t_end": 5.0})


def test_set_family_changes_the_forcing_and_takes_the_new_familys_keys():
    """--set family=none on a cosine spec said "unknown key 'F0'", and --set family=random
    --set K=2 "no such key K": another family now drops the old one's keys, and its own may
    be set."""
    from odernn.data.spec_settings import with_settings

    spec = parse_spec(GOOD, source="s.toml")
    assert with_settings(spec, sets={"family": "none"}).forcing == "none"
    random = with_settings(spec, sets={"family": "random", "K": 2})
    assert random.forcing == "random" and random.K == 2
    back = with_settings(random, sets={"family": "cosine", "F0": 0.5})
    assert back.forcing == "cosine" and back.forcing_parameters["F0"].low == 0.5
    assert with_settings(spec, sets={"F0": 0.7}).forcing_parameters["omega"] == \
        spec.forcing_parameters["omega"]  # the same family keeps its other keys
    with pytest.raises(SpecError, match="--set F0: no such key"):
        with_settings(spec, sets={"family": "none", "F0": 1.0})
    train = load_spec("train")  # naming its own family keeps its ranges, not the defaults
    same = with_settings(train, sets={"family": train.forcing})
    assert same.forcing_parameters == train.forcing_parameters


def test_a_stored_spec_keeps_every_harmonic_and_every_listed_value():
    """``to_toml`` (the file's ``spec`` attribute) gives back K and a list of values exactly:
    K = 3 is the default, so a stored K = 5 lost would read as 3."""
    text = GOOD.replace('family = "cosine"\nF0 = 0.5\nomega = [0.5, 2.0]',
                        'family = "random"\nK = 5').replace(
        "eta = [0.1, 0.2]", "eta = { values = [0.123456789012345, 0.2] }")
    spec = parse_spec(text, source="s.toml")
    again = parse_spec(spec.to_toml(), source="s.toml")
    assert again.K == 5 and again.parameters["eta"] == spec.parameters["eta"]
    assert again.parameters["eta"].values == (0.123456789012345, 0.2)


BASE = "n = 1\nseed = 0\ndt = 0.1\nn_steps = 3\n[parameters]\neta = 0.1\nx0 = 0.0\nv0 = 0.0\n"


def _documented(key: str) -> str:
    """The default column of docs/datasets.md's row for ``key``."""
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[1] / "docs" / "datasets.md").read_text()
    line = next(x for x in docs.splitlines() if x.startswith(f"| {key} |"))
    return line.rstrip(" |").rsplit("|", 1)[1].strip()


def test_the_defaults_are_the_documented_ones():
    """Every default a spec may leave out, against the table of docs/datasets.md."""
    from odernn.data.spec import Range

    spec = parse_spec(BASE)
    assert (spec.system, spec.dtype, spec.compression, spec.forcing) == (
        "oscillator", "float64", None, "none")
    assert spec.integrator == {"name": "scipy", "method": "DOP853", "rtol": 1e-12, "atol": 1e-14}
    assert _documented("`[integrator]` `method`, `rtol`, `atol`") == "`DOP853`, 1e-12, 1e-14"
    assert parse_spec(BASE + "[forcing]\n").forcing == "none"
    cosine = parse_spec(BASE + '[forcing]\nfamily = "cosine"\n')
    assert cosine.K == 1 and cosine.forcing_parameters == {
        "F0": Range(1.0, 1.0), "omega": Range(1.0, 1.0), "phase": Range(0.0, 0.0)}
    assert _documented("`[forcing]` `F0`, `omega`, `phase`") == "1, 1, 0"
    random = parse_spec(BASE + '[forcing]\nfamily = "random"\n')
    assert random.K == 3 and random.forcing_parameters == {
        "omega": Range(0.3, 2.5), "amplitude_sum": Range(1.0, 1.0),
        "phase": Range(0.0, 2 * math.pi)}
    assert _documented("`[forcing]` `K`, `omega`, `amplitude_sum`, `phase`") == \
        "3, [0.3, 2.5], 1, [0, 2 pi]"
    series = parse_spec("system = 'sine'\nn = 1\nseed = 0\ndt = 0.1\nn_steps = 3\n")
    assert series.series == {"frequency": 1.0, "noise": 0.0}
    assert series.integrator == {"name": "exact"}
    with pytest.raises(SpecError, match="missing required key 'seed'"):
        parse_spec(BASE.replace("seed = 0\n", ""))


@pytest.mark.parametrize("method", ['"RK99"', "1", '"rk45"'])
def test_an_unknown_scipy_method_is_refused_with_the_spec(method):
    """Refused when the spec is read (``--set method=...`` too), not when simulate starts."""
    with pytest.raises(SpecError, match="unknown integrator.method .*allowed: DOP853, RK45"):
        parse_spec(BASE + f'[integrator]\nname = "scipy"\nmethod = {method}\n')
    assert parse_spec(BASE + '[integrator]\nmethod = "Radau"\n').integrator["method"] == "Radau"


@pytest.mark.parametrize("name", ["rk4-sampled", "rk4-sampled-cubic", "rk4-sampled-2dt"])
def test_a_spec_may_not_name_a_method_of_sampled_forcing(name):
    with pytest.raises(SpecError, match="unknown integrator"):
        parse_spec(BASE + f'[integrator]\nname = "{name}"\n')


def test_an_override_to_a_single_point_is_refused():
    """``--n-steps 1`` reaches ``with_overrides``, whose option allows it."""
    with pytest.raises(SpecError, match="n_steps must be >= 2, got 1"):
        parse_spec(BASE).with_overrides(n_steps=1)


def test_a_range_of_one_value_is_that_value():
    """``[a, a]`` is a range like any other (only low > high is refused)."""
    from odernn.data.spec import Range

    spec = parse_spec(BASE.replace("eta = 0.1", "eta = [0.2, 0.2]"))
    assert spec.parameters["eta"] == Range(0.2, 0.2)
