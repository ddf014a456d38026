"""France loader: parsing quirks, error rules (message names the file; warehouse unchanged),
URL loading from a local HTTP server, and the deterministic sample."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import duckdb
import pytest

from ingest.france import FranceLoadError, load_france, parse_file
from samples.france import write_sample

HEADER = (
    '"Code_region";"annee";"indicateur";"unite_de_compte";"nombre";"taux_pour_mille";'
    '"insee_pop";"insee_pop_millesime";"insee_log";"insee_log_millesime"'
)
ROW = '"01";"2016";"Homicides";"Victime";"32";"0,0811956";"394110";"2016";"226105";"2016"'
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "france"


def _file(*lines: str, bom: bool = True) -> bytes:
    return (b"\xef\xbb\xbf" if bom else b"") + ("\n".join(lines) + "\n").encode("utf-8")


def parse_bytes(data: bytes, kind: str, name: str, folder: Path):
    """``data`` written to a file in ``folder``, parsed as ``kind``; messages say ``name``."""
    path = folder / "donnee-reg-test.csv"
    path.write_bytes(data)
    return parse_file(path, kind, name)


def test_parses_bom_quotes_and_decimal_comma(tmp_path):
    path = tmp_path / "donnee-reg-x.csv"
    path.write_bytes(_file(HEADER, ROW))
    con = duckdb.connect()
    (result,) = load_france(
        con, {"regional": str(path)}, sample_dir=tmp_path / "s", download_dir=tmp_path / "dl"
    )
    assert (result.rows, result.years) == (1, (2016, 2016))
    frame = con.execute("select * from raw.france_regional").df()
    row = frame.iloc[0]
    assert list(frame.columns[:2]) == ["code_region", "annee"]  # BOM not in the name
    assert row["code_region"] == "01"  # quoted, leading zero kept
    assert row["taux_pour_mille"] == pytest.approx(0.0811956)  # decimal comma
    assert row["nombre"] == 32 and row["insee_pop"] == 394110
    types = dict(con.execute("select column_name, column_type from (describe raw.france_regional)")
                 .fetchall())  # fmt: skip
    assert types["annee"] == "INTEGER" and types["nombre"] == "BIGINT"
    assert types["taux_pour_mille"] == "DOUBLE" and types["code_region"] == "VARCHAR"
    # a quoted field may contain the delimiter
    semi = ROW.replace('"Homicides"', '"Vols; avec armes"')
    assert parse_bytes(_file(HEADER, semi), "regional", "r", tmp_path).iloc[0]["indicateur"] == (
        "Vols; avec armes"
    )


def test_missing_values_blank_lines_and_extra_columns(tmp_path):
    secret = ROW.replace('"32"', '"NA"').replace('"0,0811956"', '"nd"')
    frame = parse_bytes(
        _file(HEADER + ';"commentaire"', "", secret + ';"x"', "", ROW + ';""'),
        "regional",
        "r",
        tmp_path,
    )
    assert frame["nombre"].isna().tolist() == [True, False]  # NA: statistical secrecy
    assert frame["taux_pour_mille"].isna().tolist() == [True, False]
    assert frame["source_row"].tolist() == [1, 2]  # blank lines are not rows
    assert "commentaire" not in frame.columns


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty file"),
        (_file(HEADER), "no data rows"),
        (_file(HEADER.replace(";", ","), ROW.replace(";", ",")), "wrong delimiter"),
        (_file(HEADER.replace(';"insee_pop"', ""), ROW), "missing column(s) insee_pop"),
        (_file(HEADER, ROW.replace('"32"', '"3x2"')), "line 2, column 'nombre'"),
        (_file(HEADER, ROW, ROW.replace('"0,0811956"', '"0,08,1"')), "line 3, column 'taux"),
        (_file(HEADER, '"01";"2016";"Homicides"'), "line 2: expected 10 fields, found 3"),
        (_file(HEADER, ROW + ';"a";"b"'), "line 2: expected 10 fields, found 12"),
        ("\ufeff".encode() + HEADER.encode("latin-1") + b"\n" + ROW.encode("latin-1") + b"\xe9\n",
         "not UTF-8"),
        # whole numbers only (DuckDB's own cast would round 1.5 to 2 and read 1e3, 0x10)
        (_file(HEADER, ROW.replace('"32"', '"1.5"')), "column 'nombre': cannot parse '1.5'"),
        (_file(HEADER, ROW.replace('"394110"', '"1e3"')), "column 'insee_pop': cannot parse '1e3'"),
        (_file(HEADER, ROW.replace('"32"', '"0x10"')), "column 'nombre': cannot parse '0x10'"),
        (_file(HEADER, ROW.replace('"2016"', '"99999999999"', 1)), "column 'annee': cannot parse"),
        # the decimal comma as published: a decimal point is refused, not misread
        (_file(HEADER, ROW.replace("0,08", "0.08")), "'taux_pour_mille': cannot parse '0.08"),
        (_file(HEADER, ROW, ROW.replace('"2016";"Homicides"', '"NA";"Homicides"')),
         "line 3, column 'annee': value is missing"),
        (_file(HEADER, ROW, ROW.replace('"Victime"', '" "')),
         "line 3, column 'unite_de_compte': value is missing"),
        (_file(HEADER, "", ROW, "", ROW.replace('"32"', '"x"')), "line 5, column 'nombre'"),
        (_file(HEADER, ROW, ROW.replace('"Homicides"', '"Homicides')), "line 3: malformed CSV"),
    ],
)  # fmt: skip
def test_bad_files_name_the_file_and_the_problem(tmp_path, data, fragment):
    with pytest.raises(FranceLoadError) as err:
        parse_bytes(data, "regional", "/data/bad-reg.csv", tmp_path)
    assert str(err.value).startswith("/data/bad-reg.csv: ")
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_departmental_file_is_not_accepted_as_regional(tmp_path):
    paths = write_sample(tmp_path)
    with pytest.raises(FranceLoadError, match="departmental file"):
        parse_file(paths["departmental"], "regional")


def test_sample_is_deterministic_and_realistic(tmp_path):
    a = write_sample(tmp_path / "a")
    b = write_sample(tmp_path / "b")
    for kind in a:
        assert a[kind].read_bytes() == b[kind].read_bytes()
        assert a[kind].read_bytes().startswith(b'\xef\xbb\xbf"Code_')
    reg = parse_file(a["regional"], "regional")
    dep = parse_file(a["departmental"], "departmental")
    assert reg["code_region"].nunique() == 18 and "11" in set(reg["code_region"])
    assert reg["indicateur"].nunique() == 18 and dep["indicateur"].nunique() == 17
    assert sorted(reg["annee"].unique()) == list(range(2016, 2025))
    assert {"Victime", "Infraction", "Victime entendue", "Véhicule", "Mis en cause"} == set(
        reg["unite_de_compte"]
    )
    # regional rows are the sums of the sample's départements
    sums = dep.groupby(["code_region", "annee", "indicateur"])["nombre"].sum()
    merged = reg.set_index(["code_region", "annee", "indicateur"])["nombre"]
    assert (merged.loc[sums.index] == sums).all()


def _tables(con) -> dict[str, tuple]:
    return {
        t: con.execute(f"select count(*), max(source_sha256) from raw.{t}").fetchone()
        for t in ("france_regional", "france_departmental")
    }


def test_error_leaves_the_warehouse_unchanged(tmp_path):
    good = write_sample(tmp_path / "sample")
    bad = tmp_path / "donnee-dep-bad.csv"
    bad.write_bytes(good["departmental"].read_bytes()[:-300])  # truncated last row
    con = duckdb.connect(str(tmp_path / "crimecast.duckdb"))
    kw = {"sample_dir": tmp_path / "sample", "download_dir": tmp_path / "dl"}
    load_france(con, {"regional": None, "departmental": None}, **kw)
    before = _tables(con)
    # regional alone is fine; the departmental file is truncated: nothing may be written
    other = tmp_path / "donnee-reg-other.csv"
    other.write_bytes(good["regional"].read_bytes().replace(b'"32"', b'"33"'))
    with pytest.raises(FranceLoadError, match="donnee-dep-bad.csv"):
        load_france(con, {"regional": str(other), "departmental": str(bad)}, **kw)
    assert _tables(con) == before
    # the connection is left clean (no open transaction, no rejects tables): it loads again
    load_france(con, {"regional": str(other)}, **kw)
    assert _tables(con)["france_regional"] != before["france_regional"]
    assert con.execute("select count(*) from duckdb_tables() where temporary").fetchone() == (0,)
    con.close()


def test_loads_from_a_local_http_server(tmp_path):
    paths = write_sample(tmp_path / "served")
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "served")
    )
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        con = duckdb.connect(str(tmp_path / "crimecast.duckdb"))
        specs = {
            "regional": f"{base}/{paths['regional'].name}",
            "departmental": f"{base}/{paths['departmental'].name}",
        }
        results = load_france(con, specs, sample_dir=tmp_path / "s", download_dir=tmp_path / "dl")
        assert [r.source_file for r in results] == list(specs.values())
        assert con.execute("select count(*) from raw.france_regional").fetchone()[0] == 2916
        files = con.execute("select distinct source_file from raw.france_departmental").fetchall()
        assert files == [(specs["departmental"],)]
        with pytest.raises(FranceLoadError, match="404"):
            load_france(
                con,
                {"regional": f"{base}/missing.csv"},
                sample_dir=tmp_path / "s",
                download_dir=tmp_path / "dl",
            )
        con.close()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(not REAL.is_dir(), reason="real France files not available")
def test_real_files_parse(tmp_path):
    con = duckdb.connect(str(tmp_path / "crimecast.duckdb"))
    results = load_france(
        con,
        {"regional": str(REAL), "departmental": str(REAL)},
        sample_dir=tmp_path / "s",
        download_dir=tmp_path / "dl",
    )
    assert {r.kind: r.rows for r in results} == {"regional": 2916, "departmental": 15453}
    assert con.execute(
        "select count(distinct code_departement) from raw.france_departmental"
    ).fetchone() == (101,)
    con.close()


def test_binary_bytes_and_a_huge_field_give_short_one_line_messages(tmp_path):
    # random bytes that decode as UTF-8 (control characters, no NUL): not a text file
    binary = bytes(range(1, 32)) * 40
    with pytest.raises(FranceLoadError) as caught:
        parse_bytes(binary, "regional", "reg.bin", tmp_path)
    assert str(caught.value) == (
        "reg.bin: not a text file (character 0: control character 0x01): the SSMSI files are "
        "UTF-8 CSV"
    )
    # a long number field: the message shows its start and its length, on one line
    long = ROW.replace('"32"', '"' + "9x" * 50_000 + '"')
    with pytest.raises(FranceLoadError) as caught:
        parse_bytes(_file(HEADER, long), "regional", "reg.csv", tmp_path)
    message = str(caught.value)
    assert message.startswith("reg.csv: line 2, column 'nombre': cannot parse '9x9x")
    assert message.endswith("… (100,000 characters)' as a number")
    assert len(message) < 200 and "\n" not in message
    # a 3 MB field: beyond what a CSV field can hold
    huge = ROW.replace('"Homicides"', '"' + "x" * 3_000_000 + '"')
    with pytest.raises(FranceLoadError) as caught:
        parse_bytes(_file(HEADER, huge), "regional", "reg.csv", tmp_path)
    assert str(caught.value) == (
        "reg.csv: line 2: a field is longer than 2,000,000 characters (an unclosed quote, or not "
        "this file?)"
    )
