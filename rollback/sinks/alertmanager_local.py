"""A real Prometheus Alertmanager on 127.0.0.1, for integration tests and local demos.

Who uses it: the pytest fixtures of the alert tests (and anyone who wants to see alerts land
locally). What it promises: a minimal configuration (one route to a receiver that does nothing),
its own storage directory, no clustering, a free port, and ``start()`` returns only once
``GET /-/ready`` answers 200 (or raises with the tail of Alertmanager's log). The binary is
Debian's ``prometheus-alertmanager`` (``apt-get install prometheus-alertmanager``), an
``alertmanager`` on ``PATH``, or the path in ``CANARY_SENTINEL_ALERTMANAGER_BIN``.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from detector.localbroker import find_executable, free_port, stop_process

CONFIG = """\
route:
  receiver: blackhole
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: blackhole
"""


@dataclass(frozen=True)
class WebConfig:
    """Alertmanager's ``--web.config.file``: serve TLS with ``cert_file``/``key_file`` (signed
    by ``ca_file``, which the readiness probe trusts), and require basic auth of ``username``
    with ``password`` (stored as the bcrypt hash ``password_hash``, as the file wants)."""

    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None
    username: str = ""
    password: str = ""
    password_hash: str = ""

    def render(self) -> str:
        doc: dict[str, object] = {}
        if self.cert_file is not None and self.key_file is not None:
            doc["tls_server_config"] = {
                "cert_file": str(self.cert_file),
                "key_file": str(self.key_file),
            }
        if self.username:
            doc["basic_auth_users"] = {self.username: self.password_hash}
        return json.dumps(doc)  # JSON is YAML


def find_binary() -> str:
    """The Alertmanager executable, or :class:`FileNotFoundError` saying how to install it."""
    return find_executable(
        "CANARY_SENTINEL_ALERTMANAGER_BIN",
        ("prometheus-alertmanager", "alertmanager", "/usr/bin/prometheus-alertmanager"),
        "Alertmanager not found: `apt-get install prometheus-alertmanager`",
    )


class LocalAlertmanager:
    """One Alertmanager process working in ``workdir`` (config, data and log live there)."""

    def __init__(
        self,
        workdir: Path,
        *,
        binary: str | None = None,
        web: WebConfig | None = None,
    ) -> None:
        """``web`` turns on Alertmanager's own TLS and basic auth (``--web.config.file``)."""
        self.workdir = Path(workdir)
        self.binary = binary or find_binary()
        self.web = web
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.web is not None and self.web.cert_file else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "alertmanager.log"

    def start(self, timeout: float = 30.0) -> str:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "data").mkdir(exist_ok=True)
        cfg = self.workdir / "alertmanager.yml"
        cfg.write_text(CONFIG, encoding="utf-8")
        web_flags = []
        if self.web is not None:
            web_cfg = self.workdir / "web.yml"
            web_cfg.write_text(self.web.render(), encoding="utf-8")
            web_flags = [f"--web.config.file={web_cfg}"]
        deadline = time.monotonic() + timeout
        for _ in range(3):  # a free port can be taken between probing and binding
            self.port = free_port()
            with self.log_path.open("ab") as logf:
                self._proc = subprocess.Popen(
                    [
                        self.binary,
                        f"--config.file={cfg}",
                        f"--storage.path={self.workdir / 'data'}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                        "--cluster.listen-address=",
                        "--log.level=warn",
                        *web_flags,
                    ],
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            if self._wait_ready(deadline):
                return self.url
        raise RuntimeError(f"Alertmanager did not become ready:\n{self._log_tail()}")

    def _wait_ready(self, deadline: float) -> bool:
        assert self._proc is not None
        web = self.web
        auth = (web.username, web.password) if web is not None and web.username else None
        verify: ssl.SSLContext | bool = True
        if web is not None and web.ca_file is not None:
            verify = ssl.create_default_context(cafile=str(web.ca_file))
        with httpx.Client(timeout=2.0, auth=auth, verify=verify) as client:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    return False  # exited (port taken?): the caller retries on another port
                try:
                    if client.get(f"{self.url}/-/ready").status_code == 200:
                        return True
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)  # polling interval, not a wait for a fixed duration
        self.stop()
        raise TimeoutError(f"Alertmanager not ready in time:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_process(proc, timeout=10)

    def __enter__(self) -> LocalAlertmanager:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
