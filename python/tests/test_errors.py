# SPDX-License-Identifier: Apache-2.0
"""One exception class per ferry_status error, under one base; NIXL's names;
the library's detail of a failure in the exception; the log level."""
import threading

import numpy as np
import pytest

import ferry_kv as ferry
from ferry_kv import _ferry, nixl_bindings as nb

EXPECTED = {
    -1: "NotPostedError", -2: "InvalidParamError", -3: "BackendError", -4: "NotFoundError",
    -5: "MismatchError", -6: "NotAllowedError", -7: "RepostActiveError", -8: "UnknownError",
    -9: "NotSupportedError", -10: "RemoteDisconnectError", -11: "CanceledError",
    -12: "NoTelemetryError", -13: "NoMemoryError", -14: "TimedOutError",
    -15: "BadMetadataError", -16: "IoError", -17: "NoResourcesError", -18: "AuthError",
    -19: "StaleError", -20: "AbiError",
}


@pytest.mark.parametrize("status,name", sorted(EXPECTED.items()))
def test_each_status_has_its_class(status, name):
    cls = getattr(ferry, name)
    assert ferry.error_class(status) is cls
    assert issubclass(cls, ferry.Error) and issubclass(cls, Exception)
    assert not issubclass(cls, RuntimeError)  # as NIXL's, which derive from Exception
    assert cls.status == status
    assert cls.status_name == ferry.status_name(status)
    with pytest.raises(cls) as info:
        _ferry.raise_status(status, "detail here")
    assert ferry.status_name(status) in str(info.value)
    assert "detail here" in str(info.value)
    assert info.value.status == status


def test_classes_are_distinct_and_complete():
    assert len({ferry.error_class(s) for s in EXPECTED}) == len(EXPECTED)
    assert set(_ferry.error_classes) == set(EXPECTED)
    assert ferry.error_class(-999) is ferry.Error
    assert ferry.Error.status is None


def test_non_errors_do_not_raise():
    assert _ferry.raise_status(0) is None
    assert _ferry.raise_status(1) is None


def test_strerror_and_names():
    assert ferry.status_name(0) == "FERRY_OK"
    assert ferry.status_name(-10) == "FERRY_ERR_REMOTE_DISCONNECT"
    assert isinstance(ferry.strerror(-4), str) and ferry.strerror(-4)
    assert ferry.strerror(12345)  # never empty, never raises


NIXL_NAMES = {
    "nixlNotPostedError": ferry.NotPostedError,
    "nixlInvalidParamError": ferry.InvalidParamError,
    "nixlBackendError": ferry.BackendError,
    "nixlNotFoundError": ferry.NotFoundError,
    "nixlMismatchError": ferry.MismatchError,
    "nixlNotAllowedError": ferry.NotAllowedError,
    "nixlRepostActiveError": ferry.RepostActiveError,
    "nixlUnknownError": ferry.UnknownError,
    "nixlNotSupportedError": ferry.NotSupportedError,
    "nixlRemoteDisconnectError": ferry.RemoteDisconnectError,
    "nixlCancelledError": ferry.CanceledError,
    "nixlNoTelemetryError": ferry.NoTelemetryError,
}


@pytest.mark.parametrize("name", sorted(NIXL_NAMES))
def test_nixl_exception_names(name):
    assert getattr(nb, name) is NIXL_NAMES[name]


def test_nixl_status_constants_match_ferry():
    for member in nb.nixl_status_t:
        if member.value < 0:
            assert ferry.status_name(member.value) == "FERRY_" + member.name[len("NIXL_"):]
    assert nb.NIXL_SUCCESS == ferry.OK and nb.NIXL_IN_PROG == ferry.IN_PROGRESS


# ---- the detail of a failure: what the library says, in the exception ----

def test_unregistered_memory_carries_the_detail():
    buf = np.zeros(4096, np.uint8)
    with ferry.Agent("detail") as a:
        a.create_backend("LOCAL")
        with pytest.raises(ferry.NotFoundError) as info:
            a.prep([(buf.ctypes.data, buf.nbytes, 0)], mem_type="DRAM")
    e = info.value
    assert "is not inside a registered region" in str(e)
    assert "is not inside a registered region" in e.detail
    assert f"{buf.ctypes.data:#x}+4096" in e.detail
    assert e.status == ferry.NotFoundError.status == -4
    assert _ferry.last_error() == ""  # taken by the exception


def test_unknown_plugin_and_bad_metadata_carry_the_detail():
    with ferry.Agent("detail2") as a:
        with pytest.raises(ferry.NotFoundError, match="no plugin named NOPE"):
            a.create_backend("NOPE")
        with pytest.raises(ferry.BadMetadataError, match="malformed metadata blob of 64 bytes"):
            a.load_metadata(b"\x00" * 64)


def test_detail_is_not_carried_to_the_next_exception():
    with ferry.Agent("detail3") as a:
        with pytest.raises(ferry.NotFoundError):
            a.create_backend("NOPE")
    with pytest.raises(ferry.InvalidParamError) as info:
        _ferry.raise_status(-2, "mine")
    assert "NOPE" not in str(info.value) and info.value.detail == "mine"
    with pytest.raises(ferry.Error) as info:
        _ferry.raise_status(-999)
    assert info.value.status == -999 and info.value.detail == ""


def test_detail_is_per_thread():
    seen = []

    def fail_in_thread():
        with ferry.Agent("detail4") as a:
            try:
                a.create_backend("FROM_THREAD")
            except ferry.NotFoundError as e:
                seen.append(e.detail)
        seen.append(_ferry.last_error())

    t = threading.Thread(target=fail_in_thread)
    t.start()
    t.join()
    assert "FROM_THREAD" in seen[0] and seen[1] == ""
    assert "FROM_THREAD" not in _ferry.last_error()


def test_log_level():
    old = _ferry.get_log_level()
    try:
        _ferry.set_log_level(_ferry.LOG_DEBUG)
        assert _ferry.get_log_level() == 3
        _ferry.set_log_level(0)
        assert _ferry.get_log_level() == _ferry.LOG_ERROR
        with pytest.raises(ValueError):
            _ferry.set_log_level(5)
    finally:
        _ferry.set_log_level(old)
    _ferry.clear_error()
    assert _ferry.last_error() == ""
