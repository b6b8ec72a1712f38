# SPDX-License-Identifier: Apache-2.0
"""A real S3-protocol server for tests: moto_server on a free loopback port,
started and stopped by the test (python -m moto.server, from the venv's
moto[server]), and boto3 clients of it as the independent S3 client."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any, Optional

try:
    import boto3  # noqa: F401
    import moto.server  # noqa: F401
    HAVE_MOTO = True
except ImportError:
    HAVE_MOTO = False

KEY_ID = "testing"
SECRET = "testing"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """moto_server in its own process (group), killed for sure on stop()."""

    def __init__(self, part_min: int = 64 * 1024) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, S3_UPLOAD_PART_MIN_SIZE=str(part_min),
                   AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET)
        self.proc: Optional[subprocess.Popen] = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        self._wait_ready(30.0)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("moto_server exited at start")
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto_server did not start")

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-request, as a crashed one would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def client(self, service: str = "s3", key: str = KEY_ID, secret: str = SECRET) -> Any:
        import boto3
        from botocore.config import Config
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=key, aws_secret_access_key=secret,
                            config=Config(retries={"max_attempts": 1}))

    def enforce_auth(self) -> None:
        """From now on moto checks every request's SigV4 signature against
        IAM's keys (by default it checks none)."""
        # Not a form content type: moto reads the count from the raw body.
        req = urllib.request.Request(self.url + "/moto-api/reset-auth", data=b"0",
                                     method="POST", headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(req, timeout=5).read()

    def obj_params(self, bucket: str, **extra: Any) -> dict[str, str]:
        p = {"bucket": bucket, "endpoint_override": self.url, "region": REGION,
             "access_key": KEY_ID, "secret_key": SECRET}
        p.update({k: str(v) for k, v in extra.items()})
        return p
