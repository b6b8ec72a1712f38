# SPDX-License-Identifier: Apache-2.0
"""Transfer deadlines from Python: the agent's xfer_timeout_ms, make/create
timeout_ms and Xfer.set_timeout. A request that never completes (the TDRAM
test backend with stall=N) raises TimedOutError carrying the detail, and can
be posted again. TDRAM is found through FERRY_PLUGIN_DIR, which a process
reads once, so those checks run in a child process."""
import os
import subprocess
import sys
import textwrap

import pytest

import ferry_kv as ferry

BUILD = os.environ.get("FERRY_BUILD_DIR", "/nonexistent")
TDRAM_DIR = os.path.join(BUILD, "tests", "plugins")
HAS_TDRAM = os.path.isfile(os.path.join(TDRAM_DIR, "libferry_plugin_tdram.so"))

CHILD = textwrap.dedent("""
    import time
    import numpy as np
    import ferry_kv as ferry

    def world(name, **cfg):
        a = ferry.Agent(name, **cfg)
        a.create_backend("TDRAM", {"stall": "2"})
        buf = np.zeros(8192, np.uint8)
        buf[:4096] = 7
        a.register([(buf.ctypes.data, 8192, 0)], mem_type="DRAM")
        a.load_metadata(a.metadata())
        return a, buf

    def timed_out(x):
        t0 = time.monotonic()
        x.post()
        try:
            x.wait(10)
        except ferry.TimedOutError as e:
            return time.monotonic() - t0, str(e)
        raise AssertionError("no TimedOutError")

    a, buf = world("py-deadline", xfer_timeout_ms=150)
    src, dst = [(buf.ctypes.data, 4096, 0)], [(buf.ctypes.data + 4096, 4096, 0)]
    x = a.create_xfer("WRITE", src, dst, "py-deadline", mem_type="DRAM")
    secs, msg = timed_out(x)
    assert 0.14 <= secs < 2, secs
    assert "no completion within 150 ms" in msg, msg
    assert "no completion within 150 ms" in x.error
    x.set_timeout(60)
    secs, msg = timed_out(x)
    assert "within 60 ms" in msg, msg
    x.post()
    assert x.wait(10)  # the stalls are used up: it completes now
    assert (buf[4096:] == 7).all()
    x.release()
    l = a.prep(src, mem_type="DRAM")
    r = a.prep(dst, "py-deadline", mem_type="DRAM")
    y = a.make_xfer("WRITE", l, [0], r, [0], timeout_ms=ferry.TIMEOUT_NONE)
    y.release()
    a.close()
    print("deadlines ok")
""")


def test_agent_option_and_constants():
    assert ferry.XFER_TIMEOUT_DEFAULT_MS == 60000
    assert ferry.TIMEOUT_NONE == 2**32 - 1
    with ferry.Agent("py-deadline-opt", xfer_timeout_ms=ferry.TIMEOUT_NONE) as a:
        a.create_backend("LOCAL")
    with pytest.raises(ValueError):
        with ferry.Agent("py-deadline-bad") as a:
            a.create_backend("LOCAL")
            a.create_xfer("WRITE", [(4096, 8, 0)], [(8192, 8, 0)], "nobody",
                          mem_type="DRAM", timeout_ms=2**32)


@pytest.mark.skipif(not HAS_TDRAM, reason="no TDRAM test plugin (needs FERRY_BUILD_DIR)")
def test_timeout_raises_with_detail():
    env = dict(os.environ, FERRY_PLUGIN_DIR=TDRAM_DIR, FERRY_LOG_LEVEL="error")
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "deadlines ok" in out.stdout
