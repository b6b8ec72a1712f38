#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Runs a command against a real S3-protocol server: moto_server on a free
loopback port (started and stopped as python/tests/s3server.py does), a
fresh bucket, and the variables the OBJ backend reads (AWS_DEFAULT_BUCKET,
AWS_ENDPOINT_OVERRIDE, the keys, the region). Its exit status is the
command's; 77 (skipped, with a TAP line saying why) when no interpreter here
has moto and boto3.

    with_s3.py COMMAND [ARG...]

moto comes from `scripts/install-deps.sh --venv` (build/pyenv). The
interpreter is this one when it has moto, else $FERRY_S3_PYTHON, else
$FERRY_BUILD_ROOT/pyenv/bin/python."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python", "tests"))

from s3server import HAVE_MOTO, KEY_ID, REGION, SECRET, MotoServer  # noqa: E402

REEXEC_MARK = "FERRY_WITH_S3_REEXEC"


def other_interpreters() -> list[str]:
    found = [os.environ.get("FERRY_S3_PYTHON", "")]
    root = os.environ.get("FERRY_BUILD_ROOT", "")
    if root:
        found.append(os.path.join(root, "pyenv", "bin", "python"))
    return [p for p in found if p and os.access(p, os.X_OK)]


def reexec_or_skip() -> None:
    if not os.environ.get(REEXEC_MARK):
        for python in other_interpreters():
            env = dict(os.environ, **{REEXEC_MARK: "1"})
            os.execve(python, [python, os.path.abspath(__file__)] + sys.argv[1:], env)
    print("1..0 # SKIP moto[server] and boto3 are not installed "
          "(scripts/install-deps.sh --venv installs them in build/pyenv)")
    sys.exit(77)


def run(cmd: list[str]) -> int:
    srv = MotoServer()
    try:
        bucket = "ferry-" + uuid.uuid4().hex[:12]
        srv.client().create_bucket(Bucket=bucket)
        env = dict(os.environ, AWS_DEFAULT_BUCKET=bucket, AWS_ENDPOINT_OVERRIDE=srv.url,
                   AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET,
                   AWS_REGION=REGION, FERRY_S3_URL=srv.url)
        env.pop(REEXEC_MARK, None)
        return subprocess.call(cmd, env=env)
    finally:
        srv.stop()


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: with_s3.py COMMAND [ARG...]", file=sys.stderr)
        return 2
    if not HAVE_MOTO:
        reexec_or_skip()
    return run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
