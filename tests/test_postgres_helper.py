"""The throwaway PostgreSQL server: real password auth, loopback only, a database per test, nothing left behind.

Connection tests share the session's `postgres` server; exit behaviour is tested on servers of their own.
"""

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import sqlalchemy
from helpers import postgres as helper
from helpers.postgres import find_bin_dir, throwaway_server

TESTS = Path(__file__).resolve().parent
needs_binaries = pytest.mark.skipif(find_bin_dir() is None, reason="PostgreSQL server binaries not installed")


def query(url: str, sql: str):
    """The first column of the first row `sql` returns on a fresh connection to `url`."""
    with psycopg.connect(url, connect_timeout=10, autocommit=True) as connection:
        return connection.execute(sql).fetchone()[0]


def refuses_connections(port: int) -> bool:
    """True when nothing accepts TCP on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def leftover_folders() -> set[Path]:
    """Every throwaway server folder currently in the temp dir (the session server's included)."""
    return set(Path(tempfile.gettempdir()).glob("throwaway-pg-*"))


# --- logging in -------------------------------------------------------------------------------

def test_url_holds_the_fields_and_its_password_logs_in(postgres):
    parts = urlsplit(postgres.url)
    assert (parts.scheme, parts.hostname, parts.port, parts.username, parts.password, parts.path) == (
        "postgresql", "127.0.0.1", postgres.port, postgres.user, postgres.password, f"/{postgres.dbname}")
    assert query(postgres.url, "SELECT current_user") == postgres.user


def test_wrong_password_is_refused(postgres):
    wrong = postgres.url.replace(f":{postgres.password}@", ":not-the-password@")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        query(wrong, "SELECT 1")


def test_password_stays_out_of_repr(postgres):
    assert postgres.password not in repr(postgres)


def test_listens_on_loopback_only_with_its_socket_in_its_folder(postgres):
    assert query(postgres.url, "SHOW listen_addresses") == "127.0.0.1"
    assert query(postgres.url, "SHOW unix_socket_directories") == str(postgres.folder)


# --- a database per test ----------------------------------------------------------------------

def test_new_database_is_separate_and_empty(postgres, postgres_url):
    other_url = postgres.new_database("separate_one")
    public_tables = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
    with psycopg.connect(postgres_url, connect_timeout=10, autocommit=True) as connection:
        connection.execute("CREATE TABLE trials (id integer)")
    assert query(postgres_url, public_tables) == 1
    assert query(other_url, public_tables) == 0
    assert query(other_url, "SELECT current_database()") == "separate_one"
    assert query(postgres_url, "SELECT current_database()") != "separate_one"


def test_database_url_works_with_sqlalchemy_as_given(postgres_url):
    # Optuna hands the URL to SQLAlchemy unchanged. SQLAlchemy 2.1 maps a bare postgresql:// to
    # psycopg 3, the driver installed, so the URL needs no +driver suffix.
    engine = sqlalchemy.create_engine(postgres_url)
    assert engine.dialect.driver == "psycopg"
    try:
        with engine.connect() as connection:
            assert connection.execute(sqlalchemy.text("SELECT 41 + 1")).scalar() == 42
    finally:
        engine.dispose()


# --- exit: nothing left behind ----------------------------------------------------------------

@needs_binaries
def test_exit_stops_the_server_and_removes_its_folder():
    with throwaway_server() as server:
        assert query(server.url, "SELECT 1") == 1
    assert refuses_connections(server.port)
    assert not server.folder.exists()


@needs_binaries
def test_exit_cleans_up_when_the_body_raised():
    with pytest.raises(KeyError), throwaway_server() as server:
        raise KeyError("the test failed")
    assert refuses_connections(server.port)
    assert not server.folder.exists()


@needs_binaries
def test_failed_start_raises_with_the_server_log_and_cleans_up():
    before = leftover_folders()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = squatter.getsockname()[1]
        expected = "(?s)pg_ctl start failed.*server log.*Address already in use"
        with pytest.raises(RuntimeError, match=expected), throwaway_server(port=busy):
            pytest.fail("the server started on a port that was taken")
    assert leftover_folders() <= before


# --- finding the binaries ---------------------------------------------------------------------

def make_bin_dir(path: Path, tools=("initdb", "pg_ctl")) -> Path:
    """A folder with executable stand-ins for `tools`."""
    path.mkdir(parents=True)
    for name in tools:
        (path / name).write_text("#!/bin/sh\n")
        (path / name).chmod(0o755)
    return path


def test_find_bin_dir_picks_the_newest_complete_version(tmp_path, monkeypatch):
    monkeypatch.delenv("PG_BIN_DIR", raising=False)
    monkeypatch.setattr(helper, "DISTRO_BIN_DIRS", tmp_path)
    make_bin_dir(tmp_path / "9.6" / "bin")
    make_bin_dir(tmp_path / "15" / "bin")
    make_bin_dir(tmp_path / "16" / "bin", tools=("initdb",))      # client-only leftovers: no pg_ctl
    assert find_bin_dir() == tmp_path / "15" / "bin"


def test_find_bin_dir_is_none_without_binaries(tmp_path, monkeypatch):
    monkeypatch.delenv("PG_BIN_DIR", raising=False)
    monkeypatch.setattr(helper, "DISTRO_BIN_DIRS", tmp_path / "absent")
    assert find_bin_dir() is None


def test_pg_bin_dir_overrides_the_distro_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("PG_BIN_DIR", str(make_bin_dir(tmp_path / "custom")))
    assert find_bin_dir() == tmp_path / "custom"
    monkeypatch.setenv("PG_BIN_DIR", str(tmp_path / "empty"))
    assert find_bin_dir() is None


# --- the fixture without binaries: skip locally, fail in CI -----------------------------------

# pytest.fail in a fixture counts as a setup error, not a failed test.
@pytest.mark.parametrize(("require", "outcome"), [("", "1 skipped"), ("1", "1 error")])
def test_postgres_fixture_without_binaries(tmp_path, require, outcome):
    env = {**os.environ, "PG_BIN_DIR": str(tmp_path / "no-binaries"), "JOB_REQUIRE_POSTGRES": require}
    # Runs one test of this file that needs the server, in a pytest of its own that cannot find one.
    target = f"{Path(__file__).name}::test_password_stays_out_of_repr"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", target],
                          cwd=TESTS, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert outcome in done.stdout, done.stdout + done.stderr
    assert "PostgreSQL server binaries not installed" in done.stdout
    if require:
        assert "apt-get install -y postgresql" in done.stdout
