"""A throwaway PostgreSQL server on 127.0.0.1: its own temp folder, free port, password and socket.

Nothing is shared with a system server: the cluster, its unix socket and its log live in one temp
folder that is removed on exit, and TCP is bound to the loopback address on a port the kernel picked.
"""

import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

DISTRO_BIN_DIRS = Path("/usr/lib/postgresql")   # Debian/Ubuntu: one <major>/bin per installed version
SERVER_USER = "postgres"                        # who runs the server when we are root
START_TIMEOUT = 30                              # seconds; a start takes ~1 s, a loaded CI runner more


@dataclass(frozen=True)
class Server:
    """Where the running server is and how to log in; the password stays out of repr (and logs)."""
    host: str
    port: int
    user: str
    dbname: str
    folder: Path
    password: str = field(repr=False)

    @property
    def url(self) -> str:
        """The superuser's URL for the default database."""
        return self.url_for(self.dbname)

    def url_for(self, dbname: str) -> str:
        """The superuser's URL for `dbname` (token_urlsafe passwords need no percent-quoting)."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{dbname}"

    def new_database(self, name: str) -> str:
        """Create an empty database `name` and return its URL."""
        # Imported here so collecting the suite does not need the driver, only tests that use a database.
        import psycopg
        from psycopg import sql

        # autocommit: CREATE DATABASE refuses to run inside a transaction. Leaving the block closes the connection.
        with psycopg.connect(self.url, connect_timeout=10, autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)


def find_bin_dir() -> Path | None:
    """PG_BIN_DIR if set, else the newest /usr/lib/postgresql/*/bin with initdb and pg_ctl; None if neither."""
    override = os.environ.get("PG_BIN_DIR")
    candidates = [Path(override)] if override else sorted(DISTRO_BIN_DIRS.glob("*/bin"), key=version_of, reverse=True)
    return next((path for path in candidates if has_server_tools(path)), None)


def version_of(bin_dir: Path) -> tuple[int, ...]:
    """(15,) for /usr/lib/postgresql/15/bin, so 15 sorts above 9.6; unparsable names sort last."""
    try:
        return tuple(int(part) for part in bin_dir.parent.name.split("."))
    except ValueError:
        return ()


def has_server_tools(bin_dir: Path) -> bool:
    """True when `bin_dir` holds the two programs a throwaway server needs."""
    return all(os.access(bin_dir / name, os.X_OK) for name in ("initdb", "pg_ctl"))


def pick_free_port() -> int:
    """A port nothing listens on right now: the kernel's pick for port 0 on the loopback address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def as_server_user(args: list[str]) -> list[str]:
    """`args` prefixed to run as postgres when we are root: initdb and postgres refuse to run as root."""
    return ["runuser", "-u", SERVER_USER, "--", *args] if os.geteuid() == 0 else args


def hand_over(path: Path) -> None:
    """Give `path` to the user the server runs as (a no-op unless we are root)."""
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise RuntimeError(f"running as root needs a {SERVER_USER!r} user to run the server as") from None
        os.chown(path, account.pw_uid, account.pw_gid)


def run_tool(args: list[str], folder: Path) -> subprocess.CompletedProcess:
    """Run a server tool as the server user; cwd is the temp folder, which that user can always enter."""
    return subprocess.run(as_server_user(args), cwd=folder, capture_output=True, text=True, check=False)


def init_cluster(bin_dir: Path, folder: Path, user: str, password: str) -> None:
    """initdb into folder/data with scram-sha-256 for every connection, so a wrong password is refused."""
    pwfile = folder / "pwfile"
    pwfile.write_text(password + "\n")
    hand_over(pwfile)
    done = run_tool([str(bin_dir / "initdb"), "-D", str(folder / "data"), "-U", user, f"--pwfile={pwfile}",
                     "--auth=scram-sha-256", "--locale=C", "--encoding=UTF8", "--no-sync", "--no-instructions"],
                    folder)
    pwfile.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def start_cluster(bin_dir: Path, folder: Path, port: int) -> None:
    """Start on 127.0.0.1:port with the unix socket in `folder`, away from any system server's /var/run."""
    settings = ["-c", "listen_addresses=127.0.0.1", "-c", f"port={port}", "-c", f"unix_socket_directories={folder}"]
    log = folder / "server.log"
    # pg_ctl hands -o to /bin/sh, hence the quoting.
    done = run_tool([str(bin_dir / "pg_ctl"), "start", "-w", "-t", str(START_TIMEOUT), "-D", str(folder / "data"),
                     "-l", str(log), "-o", shlex.join(settings)], folder)
    if done.returncode != 0:
        server_log = log.read_text(errors="replace") if log.exists() else "(no log written)"
        raise RuntimeError(f"pg_ctl start failed ({done.returncode}): {done.stdout}{done.stderr}\n"
                           f"server log {log}:\n{server_log}")


def stop_cluster(bin_dir: Path, folder: Path) -> None:
    """Stop at once if a postmaster runs: the data is thrown away, so no checkpoint is worth waiting for."""
    if (folder / "data" / "postmaster.pid").exists():
        run_tool([str(bin_dir / "pg_ctl"), "stop", "-w", "-m", "immediate", "-D", str(folder / "data")], folder)


@contextmanager
def throwaway_server(port: int | None = None) -> Iterator[Server]:
    """Run a fresh PostgreSQL cluster for the body; stop it and delete its folder afterwards, even on error.

    `port` defaults to a free one; tests pass a busy one to see a failed start.
    """
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL server binaries not found: apt-get install -y postgresql, or set PG_BIN_DIR")
    # mkdtemp's parent (/tmp) is world-traversable, so the server user can reach the folder once it owns it.
    folder = Path(tempfile.mkdtemp(prefix="throwaway-pg-"))
    server = Server(host="127.0.0.1", port=port or pick_free_port(), user="postgres", dbname="postgres",
                    folder=folder, password=secrets.token_urlsafe(24))
    try:
        hand_over(folder)
        init_cluster(bin_dir, folder, server.user, server.password)
        start_cluster(bin_dir, folder, server.port)
        yield server
    finally:
        # Also after a failed start: pg_ctl -w can time out while the postmaster is still coming up.
        stop_cluster(bin_dir, folder)
        shutil.rmtree(folder, ignore_errors=True)
