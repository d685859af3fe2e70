"""A team's tracking server on one machine: PostgreSQL + ``mlflow server`` with basic auth.

``custseg server start`` (``make server``) starts, in the background:

- PostgreSQL (Debian's package) on a data directory of its own (``<dir>/pgdata``), a
  non-default port, TCP on 127.0.0.1 only, password authentication, run as an
  unprivileged user (``postgres`` when started by root). It holds two databases: the
  tracking store and the users and permissions of the auth app.
- ``mlflow server`` on that store, with proxied artifacts (``<dir>/artifacts``: clients
  log through the server and need no storage credentials), the ``basic-auth`` app
  (default permission READ) and bound to 127.0.0.1.

Every file it writes is below ``<dir>`` (``.server/``, ignored by git and DVC); the
generated passwords are in ``<dir>/secrets.json``, readable by its owner only. It
prints the ``export`` lines to paste. ``custseg server stop`` stops both.

On a real host the same settings run as services (a unit or a container each), with
TLS in front of the server and object storage as the artifact destination
(docs/team-server.md#on-a-real-host).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

#: databases on the PostgreSQL server: the tracking store, the auth app's users
TRACKING_DB = "mlflow"
AUTH_DB = "mlflow_auth"
#: the PostgreSQL role custseg's server connects as
DB_USER = "custseg"
#: the MLflow admin the auth app creates on first start
ADMIN_USER = "admin"
#: seconds to wait for each service to answer
STARTUP_TIMEOUT = 90


class ServerError(RuntimeError):
    """The server stack cannot be started, stopped or reached; the message says why."""


@dataclass(frozen=True)
class ServerLayout:
    """Where one server stack keeps its files, and its ports.

    Parameters
    ----------
    root : Path
        Directory of every file of the stack (``.server/`` in the project).
    port : int
        Port of ``mlflow server`` (127.0.0.1).
    pg_port : int
        Port of PostgreSQL (127.0.0.1).
    """

    root: Path
    port: int = 5055
    pg_port: int = 55432

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def secrets_file(self) -> Path:
        return self.root / "secrets.json"

    @property
    def auth_config(self) -> Path:
        return self.root / "basic_auth.ini"

    @property
    def pid_file(self) -> Path:
        return self.root / "mlflow.pid"

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ports_file(self) -> Path:
        return self.root / "ports.json"

    @classmethod
    def at(cls, root: Path, port: int | None = None, pg_port: int | None = None) -> ServerLayout:
        """The stack in ``root``: the ports given, else those it was started with
        (``ports.json``), else the defaults."""
        saved: dict[str, int] = {}
        with contextlib.suppress(OSError, ValueError):
            saved = json.loads((root / "ports.json").read_text(encoding="utf-8"))
        default = cls(root)
        return cls(
            root,
            port or saved.get("port", default.port),
            pg_port or saved.get("pg_port", default.pg_port),
        )

    def database_uri(self, database: str, password: str) -> str:
        # the psycopg2 driver named: SQLAlchemy 2.1 reads plain postgresql:// as psycopg 3
        return f"postgresql+psycopg2://{DB_USER}:{password}@127.0.0.1:{self.pg_port}/{database}"


@dataclass(frozen=True)
class Secrets:
    """Generated on first start: the database role's and the MLflow admin's passwords,
    and the key the server signs its forms with (CSRF protection)."""

    db_password: str
    admin_password: str
    flask_secret_key: str


def start(layout: ServerLayout) -> Secrets:
    """Start PostgreSQL and ``mlflow server`` (each only if not running); return the
    secrets. Idempotent: a second call finds both up and changes nothing.

    Raises
    ------
    ServerError
        If PostgreSQL is not installed, a service does not come up (with the end of its
        log), or a port is taken by something else.
    """
    # only this user may read the artifacts and logs (root: PostgreSQL's user may enter)
    layout.root.mkdir(mode=0o711 if _db_owner() else 0o700, parents=True, exist_ok=True)
    running = _our_pid(layout)
    if running is not None and not _answers(layout):
        raise ServerError(
            f"an mlflow server of {layout.root} already runs (process {running}) on other "
            "ports than those asked for: custseg server stop first"
        )
    secrets_ = _secrets(layout)
    _start_postgres(layout, secrets_)
    _ensure_databases(layout, secrets_)
    if running is None:
        _start_mlflow(layout, secrets_)
    ports = {"port": layout.port, "pg_port": layout.pg_port}
    layout.ports_file.write_text(json.dumps(ports), encoding="utf-8")
    return secrets_


def stop(layout: ServerLayout) -> list[str]:
    """Stop ``mlflow server`` and PostgreSQL; what was stopped (empty: nothing ran)."""
    stopped = []
    pid = _our_pid(layout)  # a stale pid file (a reboot, a reused id) signals nobody
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        _wait_gone(pid, 30)
        stopped.append("mlflow server")
    layout.pid_file.unlink(missing_ok=True)
    if (layout.pgdata / "postmaster.pid").exists():
        _as_db_owner([_pg_bin("pg_ctl"), "-D", str(layout.pgdata), "-m", "fast", "-w", "stop"])
        stopped.append("PostgreSQL")
    return stopped


def status(layout: ServerLayout) -> dict[str, bool]:
    """Whether PostgreSQL and ``mlflow server`` of ``layout`` are up."""
    return {"PostgreSQL": _postgres_running(layout), "mlflow server": _mlflow_running(layout)}


def export_lines(tracking_uri: str, username: str, password: str) -> str:
    """The shell lines that point custseg (and MLflow) at a server as ``username``."""
    values = {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_TRACKING_USERNAME": username,
        "MLFLOW_TRACKING_PASSWORD": password,
        "CUSTSEG_TRACKING": "server",
    }
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in values.items())


# ------------------------------------------------------------------------- secrets


def _secrets(layout: ServerLayout) -> Secrets:
    """The stack's passwords: read, or generated once and written for the owner only."""
    path = layout.secrets_file
    if path.exists():
        return Secrets(**json.loads(path.read_text(encoding="utf-8")))
    made = Secrets(secrets.token_urlsafe(24), secrets.token_urlsafe(18), secrets.token_hex(32))
    _write_private(path, json.dumps(asdict(made)))
    return made


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only, whole or not at all."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(partial, path)


# ----------------------------------------------------------------------- PostgreSQL


def _pg_bin(name: str) -> str:
    """Path of a PostgreSQL server program (``initdb``, ``pg_ctl``): Debian keeps them
    in /usr/lib/postgresql/<version>/bin, off PATH."""
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise ServerError(
            f"PostgreSQL's {name} is not installed: apt-get install postgresql (Debian's "
            "package; the server runs on a data directory of its own, not the system one)"
        )
    return found


def _db_owner() -> str | None:
    """The unprivileged user PostgreSQL runs as when started by root (it refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        raise ServerError(
            "started as root, PostgreSQL needs an unprivileged user: Debian's postgresql "
            "package creates 'postgres'; or run make server as an ordinary user"
        ) from None
    return "postgres"


def _as_db_owner(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    owner = _db_owner()
    full = ["runuser", "-u", owner, "--", *command] if owner else command
    done = subprocess.run(full, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise ServerError(f"{' '.join(command[:2])} failed: {(done.stderr or done.stdout)[-2000:]}")
    return done


def _start_postgres(layout: ServerLayout, secrets_: Secrets) -> None:
    if not (layout.pgdata / "PG_VERSION").exists():
        _init_postgres(layout, secrets_)
    if _postgres_running(layout):
        return
    if not _port_free(layout.pg_port):
        raise ServerError(
            f"port {layout.pg_port} on 127.0.0.1 is in use (another PostgreSQL?): choose "
            "another with --pg-port"
        )
    options = f"-p {layout.pg_port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
    log_file = layout.root / "postgres.log"
    log_file.touch()
    owner = _db_owner()
    if owner:
        shutil.chown(log_file, owner)
    _as_db_owner(
        [_pg_bin("pg_ctl"), "-D", str(layout.pgdata), "-l", str(log_file), "-o", options,
         "-w", "-t", str(STARTUP_TIMEOUT), "start"],
    )  # fmt: skip


def _init_postgres(layout: ServerLayout, secrets_: Secrets) -> None:
    """``initdb`` a fresh data directory: role ``custseg`` with a password, password
    (SCRAM) authentication for every connection."""
    owner = _db_owner()
    layout.pgdata.mkdir(mode=0o700)
    password_file = layout.root / "initdb.pw"
    _write_private(password_file, secrets_.db_password + "\n")
    try:
        if owner:
            shutil.chown(layout.pgdata, owner)
            shutil.chown(password_file, owner)
            _check_reachable(layout.root, owner)
        _as_db_owner(
            [_pg_bin("initdb"), "-D", str(layout.pgdata), "-U", DB_USER, "--auth=scram-sha-256",
             f"--pwfile={password_file}", "-E", "UTF8", "--locale=C"],
        )  # fmt: skip
    finally:
        password_file.unlink(missing_ok=True)


def _check_reachable(directory: Path, owner: str) -> None:
    """PostgreSQL's user must be able to enter every folder above its data directory."""
    done = subprocess.run(["runuser", "-u", owner, "--", "test", "-x", str(directory)])
    if done.returncode != 0:
        raise ServerError(
            f"user {owner!r} cannot enter {directory}: let it through every folder above "
            f"(chmod o+x on each), or choose another --dir"
        )


def _postgres_running(layout: ServerLayout) -> bool:
    if not (layout.pgdata / "postmaster.pid").exists():
        return False
    owner = _db_owner()
    command = [_pg_bin("pg_ctl"), "-D", str(layout.pgdata), "status"]
    full = ["runuser", "-u", owner, "--", *command] if owner else command
    return subprocess.run(full, capture_output=True).returncode == 0


def _ensure_databases(layout: ServerLayout, secrets_: Secrets) -> None:
    import psycopg2

    try:
        connection = psycopg2.connect(
            host="127.0.0.1", port=layout.pg_port, user=DB_USER, password=secrets_.db_password,
            dbname="postgres", connect_timeout=10,
        )  # fmt: skip
    except psycopg2.Error as exc:
        raise ServerError(
            f"cannot sign in to PostgreSQL on 127.0.0.1:{layout.pg_port} as {DB_USER} with the "
            f"password of {layout.secrets_file}: {str(exc).strip()}"
        ) from exc
    connection.autocommit = True  # CREATE DATABASE runs outside a transaction
    try:
        with connection.cursor() as cursor:
            for database in (TRACKING_DB, AUTH_DB):
                cursor.execute("select 1 from pg_database where datname = %s", (database,))
                if cursor.fetchone() is None:
                    cursor.execute(f'create database "{database}"')
    finally:
        connection.close()


# ---------------------------------------------------------------------------- MLflow


def _auth_config(layout: ServerLayout, secrets_: Secrets) -> Path:
    """The auth app's settings: users in PostgreSQL, default permission READ."""
    text = "\n".join(
        [
            "[mlflow]",
            "default_permission = READ",
            f"database_uri = {layout.database_uri(AUTH_DB, secrets_.db_password)}",
            f"admin_username = {ADMIN_USER}",
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
            # a password check (PBKDF2) per request is most of a logging call's time;
            # a password change is seen by every worker within this many seconds
            "auth_cache_ttl_seconds = 60",
            "",
        ]
    )
    _write_private(layout.auth_config, text)
    return layout.auth_config


def _start_mlflow(layout: ServerLayout, secrets_: Secrets) -> None:
    if not _port_free(layout.port):
        raise ServerError(
            f"port {layout.port} on 127.0.0.1 is in use (another server?): choose another "
            "with --port"
        )
    layout.artifacts.mkdir(exist_ok=True)
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    command = [
        str(mlflow_bin), "server",
        "--artifacts-destination", str(layout.artifacts.resolve()),
        "--serve-artifacts",
        "--app-name", "basic-auth",
        "--host", "127.0.0.1",
        "--port", str(layout.port),
        "--workers", "2",
    ]  # fmt: skip
    env = {
        **os.environ,
        # the store's URI holds the database password: in the environment (readable by
        # this user and root only), never on the command line (any user's `ps`)
        "MLFLOW_BACKEND_STORE_URI": layout.database_uri(TRACKING_DB, secrets_.db_password),
        "MLFLOW_AUTH_CONFIG_PATH": str(_auth_config(layout, secrets_)),
        # read on the first start only, when the admin does not exist yet
        "MLFLOW_AUTH_ADMIN_PASSWORD": secrets_.admin_password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets_.flask_secret_key,
        "PATH": f"{mlflow_bin.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        env.pop(name, None)  # the server's own store is the one above
    log_path = layout.root / "mlflow.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command, cwd=layout.root, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,  # outlives this command
        )  # fmt: skip
    layout.pid_file.write_text(str(proc.pid), encoding="utf-8")
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            layout.pid_file.unlink(missing_ok=True)
            raise ServerError(f"mlflow server exited with {proc.returncode}:\n{_tail(log_path)}")
        if _answers(layout) and proc.poll() is None:  # ours answers, not another server
            return
        time.sleep(0.5)
    stop(layout)
    raise ServerError(
        f"mlflow server did not answer within {STARTUP_TIMEOUT} s:\n{_tail(log_path)}"
    )


def _answers(layout: ServerLayout) -> bool:
    try:
        with urllib.request.urlopen(f"{layout.tracking_uri}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _mlflow_running(layout: ServerLayout) -> bool:
    return _our_pid(layout) is not None and _answers(layout)


def _our_pid(layout: ServerLayout) -> int | None:
    """The pid of the pid file if that process is this stack's ``mlflow server`` (its
    command line names mlflow and server, its working directory is the stack's)."""
    pid = _read_pid(layout)
    if pid is None or not _alive(pid):
        return None
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None
    names = [Path(a.decode(errors="replace")).name for a in argv[:3]]
    ours = "server" in names and any("mlflow" in n for n in names)
    return pid if ours and cwd == layout.root.resolve() else None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _read_pid(layout: ServerLayout) -> int | None:
    try:
        return int(layout.pid_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_gone(pid: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it when it is our child (tests)
        time.sleep(0.2)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
