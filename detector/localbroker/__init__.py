"""A real single-node Apache Kafka broker (KRaft) from Maven Central jars, on 127.0.0.1.

Who calls this: the tests' session fixture, the demo (``canary-sentinel demo``), the benchmarks
and ``canary-sentinel broker``. What it promises: :meth:`LocalBroker.start` returns only when a
client has produced to and consumed from the broker, or raises :class:`BrokerError` with the tail
of the broker's log; :meth:`stop` shuts it down cleanly (SIGTERM, then SIGKILL after 30 s).

The jars are resolved once with Maven (``pom.xml`` beside this file) into
``$CANARY_SENTINEL_CACHE/kafka/<kafka>-log4j<log4j>/libs`` (default: ``.cache/`` in the
checkout), valid only with its ``.complete`` marker, so an interrupted download is fetched again.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

KAFKA_VERSION = os.environ.get("CANARY_SENTINEL_KAFKA_VERSION", "4.1.1")
LOG4J_VERSION = os.environ.get("CANARY_SENTINEL_LOG4J_VERSION", "2.24.3")
POM = Path(__file__).with_name("pom.xml")
_JVM = [
    "-Xms256m",
    "-Xmx512m",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
]


class BrokerError(RuntimeError):
    """The broker could not be fetched, formatted or started."""


def cache_root() -> Path:
    env = os.environ.get("CANARY_SENTINEL_CACHE")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").exists():
        return repo / ".cache"
    return Path.home() / ".cache" / "canary-sentinel"


def libs_dir() -> Path:
    return cache_root() / "kafka" / f"{KAFKA_VERSION}-log4j{LOG4J_VERSION}" / "libs"


def ensure_jars(quiet: bool = True) -> Path:
    """The broker's classpath folder, resolved with Maven on first use."""
    libs = libs_dir()
    if (libs / ".complete").exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (`mvn`) is needed once to fetch the Kafka jars; install it")
    if libs.exists():
        shutil.rmtree(libs)
    cmd = [
        mvn,
        "-B",
        *(["-q"] if quiet else []),
        "-f",
        str(POM),
        "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
        "-DincludeScope=runtime",
        f"-Dkafka.version={KAFKA_VERSION}",
        f"-Dlog4j2.version={LOG4J_VERSION}",
        f"-DoutputDirectory={libs}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BrokerError(f"Maven could not fetch the Kafka jars:\n{proc.stdout[-3000:]}")
    (libs / ".complete").touch()
    return libs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_executable(env_var: str, names: Sequence[str], missing: str) -> str:
    """The executable named by ``env_var``, else the first of ``names`` found on ``PATH`` (a
    name may also be an absolute path); :class:`FileNotFoundError` with ``missing`` (how to
    install it) when there is none. Shared by the local servers that tests and demos start."""
    candidates: list[str | None] = [os.environ.get(env_var), *(shutil.which(n) for n in names)]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    raise FileNotFoundError(f"{missing}, or set {env_var} to the executable")


def stop_process(
    proc: subprocess.Popen[bytes] | None, timeout: float = 30.0, sig: int = signal.SIGTERM
) -> None:
    """Send ``sig`` to ``proc`` if it still runs and wait up to ``timeout`` seconds for it to
    exit, then kill it. Shared by every local server that tests and the demo start."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _cluster_id() -> str:
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


_LOG4J2 = """status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = INFO
"""


class LocalBroker:
    """One broker process; use as a context manager or call start/stop."""

    def __init__(self, workdir: Path | None = None, port: int | None = None) -> None:
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="sentinel-kafka-"))
        self.port = port or free_port()
        self.controller_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.dir / "broker.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def _write_config(self) -> Path:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        props = self.dir / "server.properties"
        props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"CONTROLLER://127.0.0.1:{self.controller_port}",
                    "inter.broker.listener.name=PLAINTEXT",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={data}",
                    "num.partitions=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=4",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                    "log.retention.hours=2",
                    "",
                ]
            )
        )
        (self.dir / "log4j2.properties").write_text(_LOG4J2)
        return props

    def _java(self, libs: Path, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise BrokerError("Java 17 (`java`) is needed to run the Kafka broker")
        return [
            java,
            *_JVM,
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
            *args,
        ]

    def start(self, timeout: float = 90.0) -> LocalBroker:
        libs = ensure_jars()
        props = self._write_config()
        fmt = subprocess.run(
            self._java(
                libs,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                _cluster_id(),
                "-c",
                str(props),
                "--ignore-formatted",
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if fmt.returncode != 0:
            raise BrokerError(f"formatting KRaft storage failed:\n{fmt.stdout}{fmt.stderr}")
        with self.log_path.open("wb") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                self._java(libs, "kafka.Kafka", str(props)),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready(timeout)
        return self

    def _tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise BrokerError(f"broker exited with {self.proc.returncode}:\n{self._tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.2)  # poll interval while waiting on the port, under the deadline
        else:
            raise BrokerError(f"broker port did not open in {timeout:.0f} s:\n{self._tail()}")
        remaining = max(deadline - time.monotonic(), 10.0)
        # a broker that has just opened its port answers "no coordinator" and "unknown topic"
        # for a moment: aiokafka logs those at ERROR, though the probe retries through them
        client_log = logging.getLogger("aiokafka")
        level = client_log.level
        client_log.setLevel(logging.CRITICAL)
        try:
            asyncio.run(asyncio.wait_for(self._probe(), remaining))
        except Exception as exc:
            raise BrokerError(f"broker did not serve a client: {exc!r}\n{self._tail()}") from exc
        finally:
            client_log.setLevel(level)

    async def _probe(self) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        topic = f"sentinel-probe-{uuid.uuid4().hex[:8]}"
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        while True:
            try:
                await producer.start()
                break
            except Exception:
                await asyncio.sleep(0.2)  # poll until the broker accepts clients
        try:
            while True:
                try:
                    await producer.send_and_wait(topic, b"probe")
                    break
                except Exception:
                    await asyncio.sleep(0.2)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=self.bootstrap,
            group_id=f"probe-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            await consumer.getone()
        finally:
            await consumer.stop()

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
