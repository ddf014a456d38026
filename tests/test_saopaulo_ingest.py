"""ingest/saopaulo.py: sample, file/folder/URL inputs, error rules, transaction."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import duckdb
import pytest

from ingest.saopaulo import SaoPauloLoadError, load_saopaulo
from samples import saopaulo as sample

HEADER = ",".join(sample.HEADER)
GOOD = HEADER + "\nREPUBLICA,Samsung,QUARTA,NOITE,15,MULHER,FURTO,Transporte Publico\n"


def _load(con, spec, tmp_path: Path):
    return load_saopaulo(
        con, spec, sample_dir=tmp_path / "sample", download_dir=tmp_path / "downloads"
    )


def _state(con) -> list:
    return con.execute(
        "select source_file, source_sha256, count(*) from raw.saopaulo_phone_thefts "
        "group by all order by all"
    ).fetchall()


def test_sample_is_deterministic_and_loads(tmp_path, warehouse_con):
    first = sample.write_sample(tmp_path / "a").read_bytes()
    second = sample.write_sample(tmp_path / "b").read_bytes()
    assert first == second
    result = _load(warehouse_con, None, tmp_path)
    assert result.rows == sample.N_RECORDS
    cols = [r[0] for r in warehouse_con.execute("describe raw.saopaulo_phone_thefts").fetchall()]
    assert cols[:8] == [h.lower() for h in sample.HEADER]
    assert {"source_file", "source_sha256", "source_row", "loaded_at"} <= set(cols)
    share = warehouse_con.execute(
        "select avg((descr_subtipolocal in ('Via Publica', 'Via Pública'))::int) "
        "from raw.saopaulo_phone_thefts"
    ).fetchone()[0]
    assert 0.7 < share < 0.9


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty file"),
        (HEADER.encode() + b"\n", "header but no data rows"),
        (GOOD.replace(",", "\t").encode(), "wrong delimiter"),
        (GOOD.replace("RUBRICA", "CRIME").encode(), "missing column(s) RUBRICA"),
        ((GOOD + "SE,Apple,QUARTA,MANHA\n").encode(), "line 3: expected 8 fields, found 4"),
        ((GOOD + "SE,Apple,QUARTA,MANHA,1,H,FURTO,Via,x,y\n").encode(),
         "line 3: expected 8 fields, found 10"),
        ((GOOD + "\n" + 'SE,"Apple,QUARTA,MANHA,1,H,FURTO,Via\n').encode(),
         "line 4: malformed CSV"),
        (b"\xff\xfe" + "BAIRRO".encode("utf-16-le") + b"\x00\xd8", "unreadable UTF-16 text"),
        (GOOD.encode() + b"\x81\x8d", "unreadable encoding (byte"),
    ],
)  # fmt: skip
def test_bad_file_names_file_and_problem_and_leaves_warehouse_unchanged(
    tmp_path, warehouse_con, content, expected
):
    _load(warehouse_con, None, tmp_path)  # a good load first
    before = _state(warehouse_con)
    bad = tmp_path / "bad_celulares.csv"
    bad.write_bytes(content)
    with pytest.raises(SaoPauloLoadError) as err:
        _load(warehouse_con, str(bad), tmp_path)
    assert str(bad) in str(err.value) and expected in str(err.value)
    assert _state(warehouse_con) == before


def test_error_in_second_file_of_a_folder_writes_nothing(tmp_path, warehouse_con):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.csv").write_text(GOOD)
    (folder / "b.csv").write_text(HEADER + "\n")
    with pytest.raises(SaoPauloLoadError, match="b.csv"):
        _load(warehouse_con, str(folder), tmp_path)
    tables = warehouse_con.execute(
        "select count(*) from information_schema.tables where table_schema = 'raw'"
    ).fetchone()[0]
    assert tables == 0


def test_missing_input_is_a_clear_error(tmp_path, warehouse_con):
    with pytest.raises(SaoPauloLoadError, match="does not exist"):
        _load(warehouse_con, str(tmp_path / "nope.csv"), tmp_path)


def test_folder_semicolon_latin1_and_ssp_aliases(tmp_path, warehouse_con):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.csv").write_text(GOOD)
    ssp = (
        "BAIRRO;MARCA_OBJETO;DIA_SEMANA;PERIODOOCORRENCIA;RUBRICA;DESCR_SUBTIPOLOCAL\n"
        "Consolação;Apple;Sábado;A NOITE;Roubo (art. 157);Via Pública\n"
    )
    (folder / "b.csv").write_bytes(ssp.encode("cp1252"))
    result = _load(warehouse_con, str(folder), tmp_path)
    assert result.rows == 2 and len(result.files) == 2
    row = warehouse_con.execute(
        "select bairro, periodo, rubrica, descr_subtipolocal, idade, sexo "
        "from raw.saopaulo_phone_thefts where source_file like '%b.csv'"
    ).fetchone()
    assert row == ("Consolação", "A NOITE", "Roubo (art. 157)", "Via Pública", None, None)
    files = warehouse_con.execute(
        "select encoding, delimiter from raw.saopaulo_source_files order by source_file"
    ).fetchall()
    assert files == [("utf-8", ","), ("cp1252", ";")]


def test_utf16_quoted_fields_and_trimming(tmp_path, warehouse_con):
    text = (
        HEADER + '\n"  SÃO MIGUEL, PAULISTA ",Apple,QUARTA,NOITE,\t,MULHER,FURTO,"Via\nPublica"\n'
    )
    (tmp_path / "u.csv").write_bytes(text.encode("utf-16"))
    result = _load(warehouse_con, str(tmp_path / "u.csv"), tmp_path)
    assert result.rows == 1
    row = warehouse_con.execute(
        "select bairro, idade, descr_subtipolocal from raw.saopaulo_phone_thefts"
    ).fetchone()
    # trimmed (spaces, tabs), '' → NULL; the delimiter and a newline inside quotes are data
    assert row == ("SÃO MIGUEL, PAULISTA", None, "Via\nPublica")
    assert warehouse_con.execute(
        "select encoding, delimiter, rows from raw.saopaulo_source_files"
    ).fetchone() == ("utf-16", ",", 1)


def test_reload_replaces_rows(tmp_path, warehouse_con):
    f = tmp_path / "one.csv"
    f.write_text(GOOD)
    _load(warehouse_con, str(f), tmp_path)
    _load(warehouse_con, str(f), tmp_path)
    assert warehouse_con.execute("select count(*) from raw.saopaulo_phone_thefts").fetchone() == (
        1,
    )


@pytest.fixture
def http_folder(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_url_loading(tmp_path, warehouse_con, http_folder):
    root, base = http_folder
    sample.write_sample(root)
    url = f"{base}/{sample.FILE_NAME}"
    result = _load(warehouse_con, url, tmp_path)
    assert result.rows == sample.N_RECORDS and result.files == [url]
    assert warehouse_con.execute(
        "select distinct source_file from raw.saopaulo_phone_thefts"
    ).fetchall() == [(url,)]
    with pytest.raises(SaoPauloLoadError, match="404"):
        _load(warehouse_con, f"{base}/missing.csv", tmp_path)
    assert _state(warehouse_con)[0][2] == sample.N_RECORDS


def test_url_with_bad_content_names_the_url(tmp_path, warehouse_con, http_folder):
    root, base = http_folder
    (root / "tabs.csv").write_text(GOOD.replace(",", "\t"))
    with pytest.raises(SaoPauloLoadError, match=r"http://127\.0\.0\.1:\d+/tabs\.csv: wrong"):
        _load(warehouse_con, f"{base}/tabs.csv", tmp_path)


def test_parse_does_not_touch_an_open_transaction_on_success(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        result = _load(con, None, tmp_path)
        assert result.rows == sample.N_RECORDS
        # committed: another connection to the same database sees every row ...
        other = con.cursor()
        try:
            n = other.execute("select count(*) from raw.saopaulo_phone_thefts").fetchone()[0]
        finally:
            other.close()
        assert n == sample.N_RECORDS
        # ... and no transaction is left open: a new one starts, and rolling it back
        # undoes only its own change, not the load
        con.execute("begin transaction")
        con.execute("delete from raw.saopaulo_phone_thefts")
        con.execute("rollback")
        count = con.execute("select count(*) from raw.saopaulo_phone_thefts").fetchone()[0]
        assert count == sample.N_RECORDS
    finally:
        con.close()


def test_binary_bytes_without_nul_are_not_a_text_file(tmp_path, warehouse_con):
    # bytes that CP1252 decodes (no NUL, none of its five undefined bytes): before this check
    # the message quoted a kilobyte of garbled header
    data = bytes(b for b in range(1, 256) if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)) * 8
    path = tmp_path / "celulares.csv"
    path.write_bytes(data)
    with pytest.raises(SaoPauloLoadError) as caught:
        _load(warehouse_con, str(path), tmp_path)
    assert str(caught.value) == (
        f"{path}: not a text file (character 0: control character 0x01 after decoding as cp1252)"
    )
