"""``odernn import`` reads what the source holds and records what it did: blocks of any size
give the same file, a 2-D array's rows stay trajectories, constants and fields land where
they are named, and the file's record of the mapping is the one given."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from test_import import DT, MAPPED, OPTIONS, T, table, write_csv

from odernn.cli.app import main
from odernn.data import import_scan
from odernn.data.importer import ImportOptions, derive_velocity, import_file
from odernn.data.store import read_trajectories
from odernn.errors import DataError


@pytest.fixture
def block_rows(monkeypatch):
    """Set the scan's and the writer's block to ``rows`` rows of the source (``chunk``)."""
    made = import_scan.Columns.__init__

    def set_rows(rows: int) -> None:
        def init(self, *args, **kwargs):
            made(self, *args, **kwargs)
            self.chunk = rows
        monkeypatch.setattr(import_scan.Columns, "__init__", init)
    return set_rows


@pytest.mark.parametrize("derive_v", [False, True], ids=["v", "derive-v"])
@pytest.mark.parametrize("kind", ["npz", "h5", "csv"])
def test_blocks_of_any_size_give_the_file_of_one_block(tmp_path, block_rows, kind, derive_v):
    """Blocks shorter than a trajectory (or a 2-D array's row), ending a point before or after
    one, or spanning several: every stored value as from one block, bit for bit; the derived
    velocity each trajectory's own, from its ends inward."""
    n, steps = 3, 7
    columns = table(11, n=n, steps=steps)
    wide = {k: columns[k].reshape(n, steps) for k in ("x", "v", "F")}
    if kind == "npz":
        np.savez(tmp_path / "s.npz", t=columns["t"][:steps], damping=columns["damping"][::steps],
                 **wide)
    elif kind == "h5":
        with h5py.File(tmp_path / "s.h5", "w") as f:
            for k, a in wide.items():
                f.create_dataset(k, data=a, chunks=(1, 3))
            f["t"], f["damping"] = columns["t"][:steps], columns["damping"][::steps]
    else:
        write_csv(tmp_path / "s.csv", columns)
    source = tmp_path / f"s.{kind}"
    options = ImportOptions(x="x", v=None if derive_v else "v", derive_v=derive_v, forcing="F",
                            params={"eta": "damping"},
                            trajectory="run" if kind == "csv" else None)
    for rows in range(1, 2 * steps + 2):
        block_rows(rows)
        import_file(source, tmp_path / f"{rows}.h5", options)
        data = read_trajectories(tmp_path / f"{rows}.h5")
        for name in ("x", "F") if derive_v else ("x", "v", "F"):
            np.testing.assert_array_equal(getattr(data, name), wide[name], err_msg=f"{rows}")
        if derive_v:
            np.testing.assert_array_equal(data.v, derive_velocity(wide["x"], DT), f"{rows}")
        np.testing.assert_array_equal(data.params["eta"], columns["damping"][::steps])
        np.testing.assert_array_equal(data.params["v0"], data.v[:, 0])


def test_a_2d_arrays_rows_are_trajectories_even_where_its_times_run_on(tmp_path):
    """Times that continue from one row into the next (a recording cut into rows) still give
    one trajectory per row: the rows say where one ends, not the clock."""
    t = np.array([[0.0, 0.1, 0.2], [0.3, 0.4, 0.5]])
    np.savez(tmp_path / "rows.npz", t=t, x=np.arange(6.0).reshape(2, 3), v=np.zeros((2, 3)))
    result = import_file(tmp_path / "rows.npz", tmp_path / "o.h5", ImportOptions(v="v"))
    data = read_trajectories(tmp_path / "o.h5")
    assert (result.n, result.n_steps) == (2, 3) == (data.n, data.n_steps)
    np.testing.assert_array_equal(data.params["t0"], [0.0, 0.3])
    np.testing.assert_array_equal(data.params["x0"], [0.0, 3.0])


def test_a_declared_systems_constant_parameter_is_stored_for_every_trajectory(tmp_path):
    source = write_csv(tmp_path / "d.csv", table(12))
    assert main(["import", str(source), "-o", str(tmp_path / "d.h5"), "--trajectory", "run",
                 "--v", "v", "--forcing", "F", "--system", "oscillator", "--set", "eta=0.25",
                 "-q"]) == 0
    data = read_trajectories(tmp_path / "d.h5")
    assert data.system == "oscillator" and data.params["eta"].tolist() == [0.25] * data.n
    assert json.loads(data.attrs["import_mapping"])["set"] == {"eta": 0.25}


def test_two_record_tables_with_the_same_fields_are_read_each_by_its_name(tmp_path):
    """An HDF5 file of two tables of records with the same field names: ``a/x`` is the first
    table's, ``b/x`` the second's (never the second's in the first's place); ``x`` alone
    names neither (it meant the first table's, by alphabetical order)."""
    records = np.zeros(5, dtype=[("t", "f8"), ("x", "f8"), ("v", "f8")])
    records["t"] = DT * np.arange(5)
    with h5py.File(tmp_path / "tables.h5", "w") as f:
        records["x"] = np.arange(5.0)
        f["a"] = records
        records["x"] = 10 * np.arange(5.0)
        f["b"] = records
    with pytest.raises(DataError, match="'t' is a field of more than one table; give one of "
                                        "'a/t', 'b/t'"):
        import_file(tmp_path / "tables.h5", tmp_path / "a.h5", ImportOptions(v="v"))
    import_file(tmp_path / "tables.h5", tmp_path / "a.h5",
                ImportOptions(time="a/t", x="a/x", v="a/v"))
    import_file(tmp_path / "tables.h5", tmp_path / "b.h5",
                ImportOptions(time="b/t", x="b/x", v="b/v"))
    assert read_trajectories(tmp_path / "a.h5").x.tolist() == [list(np.arange(5.0))]
    assert read_trajectories(tmp_path / "b.h5").x.tolist() == [list(10 * np.arange(5.0))]


def test_a_byte_order_mark_before_a_mapped_first_column_is_not_part_of_its_name(tmp_path):
    source = tmp_path / "bom.csv"  # as Excel writes "CSV UTF-8"
    source.write_text("\ufefft,x,v\n0,1,0\n0.1,2,0\n0.2,3,0\n", encoding="utf-8")
    result = import_file(source, tmp_path / "o.h5", ImportOptions(v="v"))
    assert result.n_steps == 3
    assert read_trajectories(tmp_path / "o.h5").x.tolist() == [[1.0, 2.0, 3.0]]


def test_a_step_within_the_tolerance_passes_and_one_beyond_names_the_first_step(tmp_path):
    """At the default tolerance (1e-6 of dt), a step 5e-7 of dt off is rounding; 3e-6 is not,
    and the message gives the step it was compared with."""
    for off, ok in ((5e-8, True), (3e-7, False)):
        t = DT * np.arange(10)
        t[5] += off
        source = write_csv(tmp_path / "t.csv", {"t": t, "x": np.zeros(10), "v": np.ones(10)})
        if ok:
            assert import_file(source, tmp_path / "ok.h5", ImportOptions(v="v")).n_steps == 10
            continue
        with pytest.raises(DataError, match=r"line 7: the step is not uniform: t goes from "
                           r"0\.4 to 0\.5000003, a step of .*, but the first trajectory's step "
                           r"is 0\.1 \(tolerance 1e-06 of it"):
            import_file(source, tmp_path / "no.h5", ImportOptions(v="v"))


def test_a_parameter_that_changes_is_named_with_its_values_in_order(tmp_path):
    columns = table(14)
    changed = columns["damping"].copy()
    changed[T + 3] = 9.0  # within trajectory 1
    source = write_csv(tmp_path / "p.csv", {**columns, "damping": changed})
    before = float(columns["damping"][T + 2])
    with pytest.raises(DataError, match=rf"line {T + 5}: parameter eta \(column 'damping' "
                       rf"\(--param eta=damping\)\) changes within a trajectory, from "
                       rf"{before!r} to 9\.0"):
        import_file(source, tmp_path / "p.h5", OPTIONS)


def test_an_arrays_bad_value_is_named_by_its_row(tmp_path):
    x = np.zeros(6)
    x[2] = np.nan
    np.savez(tmp_path / "n.npz", t=DT * np.arange(6), x=x, v=np.zeros(6))
    with pytest.raises(DataError, match=r"row 2 \(0-based\)"):
        import_file(tmp_path / "n.npz", tmp_path / "n.h5", ImportOptions(v="v"))


def test_the_file_records_the_mapping_given_and_the_rows_read(tmp_path, capsys):
    """``import_mapping`` holds every option as given; ``source_rows`` counts the rows read,
    the truncated ones with them; the import's notes are printed under ``-q`` too."""
    columns = table(15)
    keep = np.ones(columns["t"].size, dtype=bool)
    keep[2 * T - 4:2 * T] = False  # trajectory 1 four points short
    source = write_csv(tmp_path / "m.csv", {k: a[keep] for k, a in columns.items()})
    out = tmp_path / "m.h5"
    assert main(["import", str(source), "-o", str(out), *MAPPED, "--trajectory", "run",
                 "--truncate", "--step-tolerance", "2e-6", "-q"]) == 0
    assert "dropped 12 of 116 rows" in capsys.readouterr().out
    data = read_trajectories(out)
    assert json.loads(data.attrs["import_mapping"]) == {
        "time": "t", "dt": None, "x": "x", "v": "v", "derive_v": False, "forcing": "F",
        "params": {"eta": "damping"}, "trajectory": "run", "truncate": True,
        "system": "external", "set": {}, "step_tolerance": 2e-6}
    assert int(data.attrs["source_rows"]) == 116 and data.n * data.n_steps == 104
    derived = ImportOptions(x="x", derive_v=True, time=None, dt=DT)
    import_file(source, tmp_path / "d.h5", derived)
    mapping = json.loads(read_trajectories(tmp_path / "d.h5").attrs["import_mapping"])
    assert (mapping["derive_v"], mapping["v"], mapping["dt"], mapping["time"]) == (
        True, None, DT, None)
