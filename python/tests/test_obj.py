# SPDX-License-Identifier: Apache-2.0
"""The OBJ backend against a real S3-protocol server (moto_server on
loopback, started and killed here), cross-checked with boto3: objects ferry
writes are read back by boto3 and the other way round, multipart uploads,
a server killed mid-transfer, refused credentials, missing objects, and
NIXL's OBJ call sequence through ferry_kv.nixl."""
from __future__ import annotations

import time
import uuid

import numpy as np
import pytest

import ferry_kv as ferry
from conftest import _has_plugin
from s3server import HAVE_MOTO, MotoServer

pytestmark = [
    pytest.mark.skipif(not _has_plugin("OBJ"), reason="OBJ plugin not built (libcurl/libxml2)"),
    pytest.mark.skipif(not HAVE_MOTO, reason="moto[server] and boto3 not installed"),
]

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def s3():
    srv = MotoServer()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def bucket(s3):
    name = "b-" + uuid.uuid4().hex[:12]
    s3.client().create_bucket(Bucket=name)
    return name


def rand_bytes(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8)


class ObjAgent:
    """An agent with an OBJ backend that knows itself (loopback)."""

    def __init__(self, params: dict, name: str = "obj") -> None:
        self.a = ferry.Agent(name + "-" + uuid.uuid4().hex[:6])
        self.a.create_backend("OBJ", params)
        self.dev = 0

    def close(self) -> None:
        self.a.close()

    def objs(self, keys_sizes: list[tuple[str, int]]) -> list[int]:
        """Registers objects (one dev_id each); returns their dev_ids."""
        devs = list(range(self.dev, self.dev + len(keys_sizes)))
        self.dev += len(keys_sizes)
        self.a.register([(0, size, d, key) for d, (key, size) in zip(devs, keys_sizes)],
                        mem_type="OBJ")
        return devs

    def xfer(self, op: int, bufs: list[np.ndarray], remote: list[tuple[int, int, int]],
             timeout: float = 30.0, **kw):
        self.a.register([(b.ctypes.data, b.nbytes, 0) for b in bufs], mem_type="DRAM")
        self.a.load_metadata(self.a.metadata())
        local = [(b.ctypes.data, b.nbytes, 0) for b in bufs]
        x = self.a.create_xfer(op, ferry.descs(local, "DRAM"), ferry.descs(remote, "OBJ"),
                               self.a.name, **kw)
        return x

    def run(self, op: int, bufs, remote, timeout: float = 30.0) -> None:
        with self.xfer(op, bufs, remote) as x:
            x.post()
            assert x.wait(timeout), "transfer did not end in time"


def test_write_then_boto3_reads(s3, bucket):
    ag = ObjAgent(s3.obj_params(bucket))
    try:
        bufs = [rand_bytes(100_000 + i, i) for i in range(8)]
        keys = [f"kv/layer{i}/block.bin" for i in range(8)]
        devs = ag.objs([(k, b.nbytes) for k, b in zip(keys, bufs)])
        ag.run(ferry.OP_WRITE, bufs, [(0, b.nbytes, d) for b, d in zip(bufs, devs)])
    finally:
        ag.close()
    c = s3.client()
    for k, b in zip(keys, bufs):
        assert c.get_object(Bucket=bucket, Key=k)["Body"].read() == b.tobytes()


def test_boto3_writes_then_ranged_reads(s3, bucket):
    data = rand_bytes(3 * MiB, 7)
    s3.client().put_object(Bucket=bucket, Key="odd key+é/x y", Body=data.tobytes())
    ag = ObjAgent(s3.obj_params(bucket))
    try:
        dev = ag.objs([("odd key+é/x y", data.nbytes)])[0]
        whole = np.zeros(data.nbytes, np.uint8)
        part = np.zeros(1000, np.uint8)
        ag.run(ferry.OP_READ, [whole, part], [(0, data.nbytes, dev), (12345, 1000, dev)])
        assert np.array_equal(whole, data)
        assert np.array_equal(part, data[12345:13345])
    finally:
        ag.close()


def test_multipart_upload_and_split_download(s3, bucket):
    """Threshold and parts set low: a 1.5 MiB WRITE is a multipart upload of
    128 KiB parts (boto3 sees its ETag "<md5>-12"); the READ is split into
    ranged GETs."""
    data = rand_bytes(3 * MiB // 2, 11)
    ag = ObjAgent(s3.obj_params(bucket, multipart_threshold="256K", part_size="128K",
                                num_threads=8))
    try:
        dev = ag.objs([("big", data.nbytes)])[0]
        ag.run(ferry.OP_WRITE, [data], [(0, data.nbytes, dev)])
        head = s3.client().head_object(Bucket=bucket, Key="big")
        assert head["ContentLength"] == data.nbytes
        assert head["ETag"].strip('"').endswith("-12")
        assert s3.client().get_object(Bucket=bucket, Key="big")["Body"].read() == data.tobytes()
        back = np.zeros_like(data)
        ag.run(ferry.OP_READ, [back], [(0, data.nbytes, dev)])
        assert np.array_equal(back, data)
    finally:
        ag.close()


def test_missing_object_and_query(s3, bucket):
    s3.client().put_object(Bucket=bucket, Key="here", Body=b"x" * 1234)
    ag = ObjAgent(s3.obj_params(bucket))
    try:
        devs = ag.objs([("here", 1234), ("absent", 4096)])
        res = ag.a.query_mem([(0, 1, 0, "here"), (0, 1, 1, "absent")], "OBJ", mem_type="OBJ")
        assert res == [{"size": 1234}, None]
        buf = np.zeros(4096, np.uint8)
        with ag.xfer(ferry.OP_READ, [buf], [(0, 4096, devs[1])]) as x:
            x.post()
            with pytest.raises(ferry.NotFoundError):
                x.wait(30)
            assert "NoSuchKey" in x.error and "absent" in x.error
    finally:
        ag.close()


def test_write_at_offset_refused(s3, bucket):
    ag = ObjAgent(s3.obj_params(bucket))
    try:
        dev = ag.objs([("k", 8192)])[0]
        buf = rand_bytes(100, 1)
        with pytest.raises(ferry.NotSupportedError):
            ag.xfer(ferry.OP_WRITE, [buf], [(4096, 100, dev)])
    finally:
        ag.close()


def test_release_in_flight_then_serves(s3, bucket):
    data = rand_bytes(8 * MiB, 3)
    ag = ObjAgent(s3.obj_params(bucket, multipart_threshold="1M", part_size="512K"))
    try:
        devs = ag.objs([("rel", data.nbytes), ("after", 1000)])
        x = ag.xfer(ferry.OP_WRITE, [data], [(0, data.nbytes, devs[0])])
        x.post()
        x.release()  # mid-flight: every call is taken off curl at once
        small = rand_bytes(1000, 4)
        ag.run(ferry.OP_WRITE, [small], [(0, 1000, devs[1])])
        assert s3.client().get_object(Bucket=bucket, Key="after")["Body"].read() == small.tobytes()
    finally:
        ag.close()


def test_unreachable_endpoint():
    from s3server import free_port
    ag = ObjAgent({"bucket": "b", "endpoint_override": f"http://127.0.0.1:{free_port()}",
                   "access_key": "a", "secret_key": "s", "max_attempts": "2",
                   "retry_base_ms": "10"})
    try:
        dev = ag.objs([("k", 10)])[0]
        buf = np.zeros(10, np.uint8)
        t0 = time.monotonic()
        with ag.xfer(ferry.OP_READ, [buf], [(0, 10, dev)]) as x:
            x.post()
            with pytest.raises(ferry.RemoteDisconnectError):
                x.wait(20)
            assert "127.0.0.1" in x.error and "after 2 attempts" in x.error
        with pytest.raises(ferry.RemoteDisconnectError):
            ag.a.query_mem([(0, 1, 0, "k")], "OBJ", mem_type="OBJ")
        assert time.monotonic() - t0 < 10
    finally:
        ag.close()


@pytest.mark.parametrize("op", [ferry.OP_WRITE, ferry.OP_READ])
def test_server_killed_mid_transfer(op):
    """SIGKILL of the server during a large PUT or GET: the request ends in
    an error status within a bounded time (no hang)."""
    srv = MotoServer()
    try:
        c = srv.client()
        c.create_bucket(Bucket="kill")
        data = rand_bytes(64 * MiB, 5)
        if op == ferry.OP_READ:
            c.put_object(Bucket="kill", Key="big", Body=data.tobytes())
        ag = ObjAgent(srv.obj_params("kill", max_attempts=2, retry_base_ms=50,
                                     connect_timeout_ms=1000, stall_timeout_s=2,
                                     multipart_threshold="1G"))
        try:
            dev = ag.objs([("big", data.nbytes)])[0]
            buf = data if op == ferry.OP_WRITE else np.zeros_like(data)
            with ag.xfer(op, [buf], [(0, data.nbytes, dev)]) as x:
                x.post()
                time.sleep(0.05)
                srv.kill()
                t0 = time.monotonic()
                with pytest.raises(ferry.Error) as err:
                    x.wait(30)
                assert time.monotonic() - t0 < 15
                assert x.error
                assert not isinstance(err.value, ferry.TimedOutError) or "no completion" not in x.error
        finally:
            ag.close()
    finally:
        srv.stop()


def test_wrong_credentials_auth_error():
    """moto checks SigV4 signatures once auth is enforced (moto-api
    reset-auth): a user's real key works, a wrong secret and an unknown key
    id are refused with the server's code in the detail."""
    srv = MotoServer()
    try:
        iam = srv.client("iam")
        iam.create_user(UserName="u")
        iam.put_user_policy(UserName="u", PolicyName="all", PolicyDocument=(
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*",'
            '"Resource":"*"}]}'))
        key = iam.create_access_key(UserName="u")["AccessKey"]
        srv.client().create_bucket(Bucket="auth")
        srv.enforce_auth()
        kid, sec = key["AccessKeyId"], key["SecretAccessKey"]
        good = {"bucket": "auth", "endpoint_override": srv.url, "access_key": kid,
                "secret_key": sec}
        _write_one(good, "ok", None, multipart=False)
        _write_one(good, "ok-mpu", None, multipart=True)
        assert srv.client(key=kid, secret=sec).head_object(Bucket="auth",
                                                           Key="ok-mpu")["ContentLength"]
        _write_one(dict(good, secret_key="wrong"), "no", "SignatureDoesNotMatch", False)
        _write_one(dict(good, access_key="AKIANOBODY00000000"), "no", "InvalidAccessKeyId", False)
    finally:
        srv.stop()


def _write_one(params: dict, key: str, code, multipart: bool) -> None:
    if multipart:
        params = dict(params, multipart_threshold="128K", part_size="64K")
    ag = ObjAgent(params)
    try:
        dev = ag.objs([(key, 300_000)])[0]
        buf = rand_bytes(300_000, 9)
        with ag.xfer(ferry.OP_WRITE, [buf], [(0, buf.nbytes, dev)]) as x:
            x.post()
            if code is None:
                assert x.wait(30)
                return
            with pytest.raises(ferry.AuthError):
                x.wait(30)
            assert code in x.error and "HTTP 403" in x.error
    finally:
        ag.close()


def test_nixl_obj_sequence(s3, bucket):
    """NIXL's OBJ calls through ferry_kv.nixl: create_backend("OBJ", params),
    DRAM and OBJ registrations (keys in the metadata), WRITE and READ to the
    agent's own name, query_memory."""
    from ferry_kv.nixl import nixl_agent, nixl_agent_config
    agent = nixl_agent("nixl-obj-" + uuid.uuid4().hex[:6], nixl_agent_config(backends=[]))
    agent.create_backend("OBJ", s3.obj_params(bucket))
    src = [rand_bytes(65536, i) for i in range(4)]
    dst = [np.zeros(65536, np.uint8) for _ in range(4)]
    keys = [f"nixl/{i}" for i in range(4)]
    obj_reg = agent.register_memory([(0, 65536, i, k) for i, k in enumerate(keys)], "OBJ")
    dram_reg = agent.register_memory([(a.ctypes.data, a.nbytes, 0, "") for a in src + dst],
                                     "DRAM")
    assert obj_reg is not None and dram_reg is not None
    obj_descs = agent.get_xfer_descs([(0, 65536, i) for i in range(4)], "OBJ")

    def run(op, bufs):
        local = agent.get_xfer_descs([(a.ctypes.data, a.nbytes, 0) for a in bufs], "DRAM")
        h = agent.initialize_xfer(op, local, obj_descs, agent.name)
        state = agent.transfer(h)
        deadline = time.monotonic() + 30
        while state not in ("DONE", "ERR") and time.monotonic() < deadline:
            state = agent.check_xfer_state(h)
        agent.release_xfer_handle(h)
        assert state == "DONE"

    run("WRITE", src)
    run("READ", dst)
    assert all(np.array_equal(a, b) for a, b in zip(src, dst))
    found = agent.query_memory([(0, 1, 0, keys[0]), (0, 1, 1, "nixl/none")], "OBJ", "OBJ")
    assert found[0] is not None and found[1] is None
    assert s3.client().get_object(Bucket=bucket, Key=keys[2])["Body"].read() == src[2].tobytes()
    agent.deregister_memory(dram_reg)
    agent.deregister_memory(obj_reg)
