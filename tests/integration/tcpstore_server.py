# SPDX-License-Identifier: Apache-2.0
"""A PyTorch TCPStore server (or client) for the TCPStore-mode tests.

  tcpstore_server.py serve HOST PORT
      starts the store's server (PORT 0: any free port), prints
      "port N" once it listens, and serves until stdin closes or SIGTERM.
  tcpstore_server.py flip HOST PORT KEY NEWKEY
      reads KEY with PyTorch's own client, flips one bit in the middle of
      the value and writes it under NEWKEY (and back under KEY); prints
      the value's length.
  tcpstore_server.py get HOST PORT KEY
      prints the length of KEY's value, read with PyTorch's client.

Exit status 77 when torch.distributed cannot be imported (Debian's
python3-torch is missing).
"""
import datetime
import signal
import sys
import threading

try:
    from torch.distributed import TCPStore
except ImportError:
    sys.exit(77)

TIMEOUT = datetime.timedelta(seconds=10)


def client(host, port):
    return TCPStore(host, int(port), None, False, TIMEOUT)


def serve(host, port):
    store = TCPStore(host, int(port), None, True, TIMEOUT, wait_for_workers=False)
    print(f"port {store.port}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait()


def flip(host, port, key, newkey):
    c = client(host, port)
    val = bytearray(c.get(key))
    val[len(val) // 2] ^= 1
    c.set(newkey, bytes(val))
    c.set(key, bytes(val))
    print(len(val))


def get(host, port, key):
    print(len(client(host, port).get(key)))


if __name__ == "__main__":
    {"serve": serve, "flip": flip, "get": get}[sys.argv[1]](*sys.argv[2:])
