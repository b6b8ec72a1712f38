#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ferry-info and ferry-check: tools_info_test.sh CASE
# Environment (set by meson): FERRY_INFO, FERRY_CHECK (the programs),
# FERRY_TEST_UCX (1 when the UCX plugin was built), FERRY_TEST_SHARED_PLUGINS
# (how many .so plugins the build made), FERRY_TEST_PLUGINS (the
# test plugins' dir, with libferry_plugin_badabi.so), FERRY_TEST_FAKE_UCX_INFO
# (fake_ucx_info.sh), FERRY_TEST_MOCK_CUDA (the mock driver, when built),
# FERRY_PLUGIN_DIR (this build's plugins).
# Exit 0 passed, 1 failed, 77 skipped.
set -u

INFO=${FERRY_INFO:?}
CHECK=${FERRY_CHECK:?}
GOOD_DIR=${FERRY_PLUGIN_DIR:?}
TMP=$(mktemp -d)
HOLDER=
cleanup() {
    [ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
# A clean environment: nothing asks for UCX transports, etcd or GDS unless a
# case sets it.
unset UCX_TLS UCX_NET_DEVICES NIXL_ETCD_ENDPOINTS FERRY_ETCD_ENDPOINTS CUFILE_ENV_PATH_JSON \
    FERRY_UCX_INFO FERRY_FI_INFO FERRY_CUDA_LIB FERRY_CUFILE_LIB FERRY_MAX_REGISTERED_BYTES UCX_IB_RCACHE_MAX_SIZE

fail() {
    echo "FAIL: $*"
    for f in "$TMP"/out "$TMP"/err; do
        [ -f "$f" ] && { echo "--- $(basename "$f")"; tail -n 40 "$f"; }
    done
    exit 1
}

# run WANT_RC PROGRAM ARGS...: output in $TMP/out and $TMP/err; fails
# unless it exits with WANT_RC.
run() {
    local want=$1 rc=0
    shift
    echo "+ $* (want exit $want)"
    "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
    [ "$rc" -eq "$want" ] || fail "exit $rc, wanted $want: $*"
}

has() { # TEXT: stdout holds it
    grep -qF -- "$1" "$TMP/out" || fail "output lacks '$1'"
}
lacks() {
    ! grep -qF -- "$1" "$TMP/out" || fail "output has '$1'"
}
problems() { # N [+]: exactly N PROBLEM lines (N+: at least N), each with a fix
    local n
    n=$(grep -c "^ferry-check: PROBLEM " "$TMP/out")
    if [ "${2:-}" = + ]; then
        [ "$n" -ge "$1" ] || fail "$n PROBLEM lines, wanted at least $1"
    else
        [ "$n" -eq "$1" ] || fail "$n PROBLEM lines, wanted $1"
    fi
    ! grep "^ferry-check: PROBLEM " "$TMP/out" | grep -vq "; fix: " || fail "a PROBLEM without a fix"
}

# hold_port: a process listening on 127.0.0.1 at a free port, in $PORT.
hold_port() {
    python3 -c 'import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
print(s.getsockname()[1], flush=True)
time.sleep(120)' >"$TMP/port" &
    HOLDER=$!
    for _ in $(seq 100); do
        [ -s "$TMP/port" ] && break
        sleep 0.05
    done
    PORT=$(cat "$TMP/port")
    [ -n "$PORT" ] || fail "no port held"
}
release_port() {
    kill "$HOLDER" 2>/dev/null
    wait "$HOLDER" 2>/dev/null
    HOLDER=
}
# closed_port: a port nothing listens on (bound once, then closed), in $PORT.
closed_port() {
    PORT=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
}

need_ucx() {
    [ "${FERRY_TEST_UCX:-0}" = 1 ] || { echo "SKIP: the UCX plugin was not built"; exit 77; }
}

# JSON checks: python3 reads stdout; the script's asserts say what broke.
json() {
    python3 -c "import json, sys
d = json.load(open(sys.argv[1]))
$1" "$TMP/out" || fail "JSON check: $1"
}

case_info_text() {
    run 0 "$INFO"
    has "ferry 0."
    has "plugins built:"
    has "Plugin search path (FERRY_PLUGIN_DIR):"
    has "  LOCAL    builtin  ABI 1  loaded"
    has "capabilities: LOCAL"
    has "memory types: DRAM"
    has "UCX:"
    has "GPUs:"
    has "cuFile:"
    if [ "${FERRY_TEST_UCX:-0}" = 1 ]; then
        grep -q "^  UCX  .*libferry_plugin_ucx.so  ABI 1  loaded" "$TMP/out" || fail "no UCX plugin"
        has "capabilities: LOCAL REMOTE NOTIF PROGRESS"
        has "      tls "
    fi
    run 0 "$INFO" -B
    has "options: ucx="
    lacks "Plugins ("
    run 0 "$INFO" --plugins
    has "Plugins ("
    lacks "ferry-info:"
    lacks "GPUs:"
}

case_info_json() {
    run 0 "$INFO" --json
    json '
META = {"ferry_version", "host", "time"}
assert set(d) == {"ferry", "build", "plugin_search_path", "plugins", "ucx", "libfabric", "gpu"} | META, list(d)
names = [p["name"] for p in d["plugins"]]
assert names[0] == "LOCAL", names
local = d["plugins"][0]
assert local["path"] == "builtin" and local["abi_version"] == 1 and local["status"] == "loaded"
assert "LOCAL" in local["caps"] and "DRAM" in local["runtime_mem_types"], local
for p in d["plugins"]:
    if p["status"] == "loaded":
        for q in p["params"]:
            assert set(q) >= {"key", "default", "help"}, q
assert "LOCAL" in d["build"]["plugins"]
assert d["ferry"]["version"] == d["ferry"]["library_version"]
assert d["plugin_search_path"]["source"] == "FERRY_PLUGIN_DIR"
assert isinstance(d["gpu"]["devices"], list)'
    if [ "${FERRY_TEST_UCX:-0}" = 1 ]; then
        json '
ucx = [p for p in d["plugins"] if p["name"] == "UCX"][0]
assert ucx["status"] == "loaded" and "REMOTE" in ucx["caps"], ucx
assert "tls" in [q["key"] for q in ucx["params"]]'
    fi
    run 0 "$INFO" -b local --json
    json '
assert list(d) == ["plugins", "ferry_version", "host", "time"] and len(d["plugins"]) == 1, d
assert d["plugins"][0]["name"] == "LOCAL"'
    FERRY_UCX_INFO=$FERRY_TEST_FAKE_UCX_INFO run 0 "$INFO" -u -g --json
    json '
assert set(d) == {"ucx", "gpu", "ferry_version", "host", "time"}, list(d)
u = d["ucx"]
assert u["version"] == "1.99.0" and u["error"] is None, u
tls = {t["name"]: [x["name"] for x in t["devices"]] for t in u["transports"]}
assert tls["rc_mlx5"] == ["mlx5_0:1"] and tls["tcp"] == ["eth0"], tls'
}

case_info_backend() {
    run 0 "$INFO" -b LOCAL
    has "  LOCAL    builtin  ABI 1  loaded"
    has "params (key = default: help):"
    lacks "Plugin search path"
    run 1 "$INFO" -b NOSUCH
    grep -qF "no plugin named NOSUCH" "$TMP/err" || fail "no reason given"
    run 2 "$INFO" --nosuch
    run 2 "$INFO" extra
    run 0 "$INFO" --help
    has "--json"
}

# The test plugins include one per defect: each is listed as refused, with
# why, and the bad-ABI one with its ABI version.
case_info_refused() {
    FERRY_PLUGIN_DIR=${FERRY_TEST_PLUGINS:?} run 0 "$INFO" -p
    grep -q "^  BADABI .*libferry_plugin_badabi.so  ABI [0-9]*  REFUSED (FERRY_ERR_ABI): plugin ABI" \
        "$TMP/out" || fail "BADABI not refused for its ABI"
    grep -q "^  NOSYM .*REFUSED (FERRY_ERR_BACKEND): no ferry_plugin_get symbol" "$TMP/out" ||
        fail "NOSYM"
    has "TDRAM"
    FERRY_PLUGIN_DIR=$FERRY_TEST_PLUGINS run 0 "$INFO" -p --json
    json '
p = {p["name"]: p for p in d["plugins"]}
assert p["BADABI"]["status"] == "refused" and p["BADABI"]["error_code"] == "FERRY_ERR_ABI", p["BADABI"]
assert p["BADABI"]["abi_version"] != 1
assert p["TDRAM"]["status"] == "loaded"'
}

case_info_ucx() {
    FERRY_UCX_INFO=$FERRY_TEST_FAKE_UCX_INFO run 0 "$INFO" -u
    has "ucx_info: $FERRY_TEST_FAKE_UCX_INFO (UCX 1.99.0)"
    grep -q "^    rc_mlx5 *mlx5_0:1 (network)" "$TMP/out" || fail "rc_mlx5 not listed"
    grep -q "^    tcp *eth0 (network)" "$TMP/out" || fail "tcp not listed"
    FERRY_UCX_INFO=/nonexistent/ucx_info run 0 "$INFO" -u
    has "transports and devices unknown"
    # The real one, where installed.
    if command -v ucx_info >/dev/null; then
        run 0 "$INFO" -u
        grep -q "^    self *memory" "$TMP/out" || fail "real ucx_info: no self transport"
    fi
}

case_info_fabric() {
    FERRY_FI_INFO=$FERRY_TEST_FAKE_FI_INFO run 0 "$INFO" -f
    has "fi_info: $FERRY_TEST_FAKE_FI_INFO"
    grep -q "^    efa  *rdmap0s6-rdm$" "$TMP/out" || fail "efa not listed"
    grep -q "^    tcp;ofi_rxm  *eth0, lo$" "$TMP/out" || fail "tcp;ofi_rxm not listed once"
    FERRY_FI_INFO=$FERRY_TEST_FAKE_FI_INFO run 0 "$INFO" -f --json
    json '
assert set(d) == {"libfabric", "ferry_version", "host", "time"}, list(d)
p = {x["name"]: x["domains"] for x in d["libfabric"]["providers"]}
assert p == {"efa": ["rdmap0s6-rdm"], "tcp;ofi_rxm": ["eth0", "lo"]}, p'
    FERRY_FI_INFO=/nonexistent/fi_info run 0 "$INFO" -f
    has "providers unknown"
    # The real one, where installed: the providers the LIBFABRIC tests use.
    if command -v fi_info >/dev/null; then
        run 0 "$INFO" -f
        grep -q "^    tcp;ofi_rxm .*lo" "$TMP/out" || fail "real fi_info: no tcp;ofi_rxm on lo"
    fi
}

case_info_gpu() {
    FERRY_CUDA_LIB=/nonexistent/libcuda.so.1 FERRY_CUFILE_LIB=/nonexistent/libcufile.so.0 \
        run 0 "$INFO" -g
    has "GPUs: none seen: no CUDA driver"
    has "cuFile: not found"
    if [ -n "${FERRY_TEST_MOCK_CUDA:-}" ]; then
        FERRY_CUDA_LIB=$FERRY_TEST_MOCK_CUDA FY_MOCK_GPUS=2 run 0 "$INFO" -g
        has "GPUs: 2 (driver $FERRY_TEST_MOCK_CUDA"
        grep -q "^  1: .*, GPU-[0-9a-f]\{8\}-[0-9a-f]\{4\}-.*sm_90" "$TMP/out" || fail "GPU 1"
    fi
}

# A clean setup is healthy, with every asked-for check passing.
case_check_clean() {
    run 0 "$CHECK"
    has "ferry-check: healthy"
    problems 0
    hold_port # etcd's stand-in
    local held=$PORT
    closed_port # a free one (while the other is held, the kernel cannot pick it)
    local free=$PORT
    PORT=$held
    run 0 "$CHECK" -v --reg-bytes 4K --listen-host 127.0.0.1 --listen-port "$free" \
        --etcd "127.0.0.1:$PORT" --backend LOCAL
    has "ferry-check: ok: plugin LOCAL loads (builtin, ABI 1)"
    has "ferry-check: ok: backend LOCAL created"
    has "ferry-check: ok: locked-memory limit"
    has "ferry-check: ok: listener port 127.0.0.1:$free is free"
    has "ferry-check: ok: etcd endpoint 127.0.0.1:$PORT (from --etcd) accepts connections"
    has "ferry-check: healthy"
    if [ "${FERRY_TEST_UCX:-0}" = 1 ]; then
        has "ferry-check: ok: plugin UCX loads"
    fi
}

case_check_plugin_dir_missing() {
    FERRY_PLUGIN_DIR=/nonexistent run 1 "$CHECK"
    has "ferry-check: PROBLEM FERRY_PLUGIN_DIR names /nonexistent: No such file or directory; fix: "
    grep -q "^ferry-check: [0-9]* problems\? found$" "$TMP/out" || fail "no summary line"
}

case_check_plugin_dir_empty() {
    mkdir "$TMP/empty"
    if [ "${FERRY_TEST_SHARED_PLUGINS:-1}" = 0 ]; then
        # Nothing is lost when the build made no shared plugin: a note.
        FERRY_PLUGIN_DIR=$TMP/empty run 0 "$CHECK"
        has "note: FERRY_PLUGIN_DIR names $TMP/empty, which holds no plugin"
        return
    fi
    # The empty dir beside a good one: that one problem only.
    FERRY_PLUGIN_DIR=$TMP/empty:$GOOD_DIR run 1 "$CHECK"
    problems 1
    has "ferry-check: PROBLEM FERRY_PLUGIN_DIR names $TMP/empty, which holds no libferry_plugin_*.so"
    FERRY_PLUGIN_DIR=$TMP/empty run 1 "$CHECK"
    has "which holds no libferry_plugin_*.so"
}

case_check_bad_abi() {
    mkdir "$TMP/bad"
    cp "${FERRY_TEST_PLUGINS:?}/libferry_plugin_badabi.so" "$TMP/bad/"
    FERRY_PLUGIN_DIR=$TMP/bad:$GOOD_DIR run 1 "$CHECK"
    problems 1
    grep -q "^ferry-check: PROBLEM plugin BADABI ($TMP/bad/libferry_plugin_badabi.so) is built for plugin ABI [0-9]*; this libferry speaks ABI 1; fix: rebuild it" \
        "$TMP/out" || fail "no ABI problem"
    # Every defect of the test plugins is a problem of its own.
    FERRY_PLUGIN_DIR=$FERRY_TEST_PLUGINS:$GOOD_DIR run 1 "$CHECK"
    problems 6 +
    for name in BADABI NOSYM NULLDESC MISSINGOP MISNAMED SMALLOPS; do
        grep -q "^ferry-check: PROBLEM plugin $name " "$TMP/out" || fail "$name not reported"
    done
    lacks "PROBLEM plugin TDRAM"
    lacks "PROBLEM plugin INITFAIL"
    # A backend asked for must be created.
    run 1 "$CHECK" --backend NOSUCH
    has "PROBLEM no plugin named NOSUCH"
}

case_check_etcd() {
    closed_port
    NIXL_ETCD_ENDPOINTS=http://127.0.0.1:$PORT run 1 "$CHECK" --timeout-ms 500
    problems 1
    has "ferry-check: PROBLEM etcd endpoint http://127.0.0.1:$PORT (from NIXL_ETCD_ENDPOINTS) is unreachable: Connection refused; fix: "
    FERRY_ETCD_ENDPOINTS=127.0.0.1:$PORT run 1 "$CHECK" --timeout-ms 500
    has "(from FERRY_ETCD_ENDPOINTS) is unreachable"
    run 1 "$CHECK" --etcd "127.0.0.1:$PORT" --timeout-ms 500
    has "(from --etcd) is unreachable"
    run 1 "$CHECK" --etcd "http://127.0.0.1:notaport"
    has "cannot use etcd endpoint"
    hold_port
    # One reachable, one not, in one list: only the second is a problem.
    NIXL_ETCD_ENDPOINTS="http://127.0.0.1:$PORT/,[::1]:1" run 1 "$CHECK" -v --timeout-ms 500
    problems 1
    has "ok: etcd endpoint http://127.0.0.1:$PORT/ (from NIXL_ETCD_ENDPOINTS) accepts connections"
    NIXL_ETCD_ENDPOINTS=http://localhost:$PORT run 0 "$CHECK"
}

case_check_listen_port() {
    hold_port
    run 1 "$CHECK" --listen-host 127.0.0.1 --listen-port "$PORT"
    problems 1
    has "ferry-check: PROBLEM listener port 127.0.0.1:$PORT is busy"
    # The agent's default host, 0.0.0.0, collides with it too.
    run 1 "$CHECK" --listen-port "$PORT"
    has "PROBLEM listener port 0.0.0.0:$PORT is busy"
    local port=$PORT
    release_port
    run 0 "$CHECK" --listen-host 127.0.0.1 --listen-port "$port"
    run 2 "$CHECK" --listen-port 70000
}

# What bounds pinned memory: warnings (exit 0) naming the setting to change.
case_check_host_memory() {
    export FERRY_MAX_REGISTERED_BYTES=1T
    run 0 "$CHECK" --json -
    json "w = d['warnings']; assert any(x['what'].startswith('FERRY_MAX_REGISTERED_BYTES (1 TiB) is above the host') and 'lower FERRY_MAX_REGISTERED_BYTES' in x['fix'] for x in w), w"
    json "assert d['healthy'] and not d['problems']"
    export FERRY_MAX_REGISTERED_BYTES=1M,UCX=512K
    run 0 "$CHECK" -v
    has "ferry-check: ok: pinned memory is bounded below MemAvailable"
    lacks "WARNING FERRY_MAX_REGISTERED_BYTES"
    unset FERRY_MAX_REGISTERED_BYTES
    # Unbounded: no cap, and a locked-memory limit that does not apply.
    local unbounded=0
    if [ $(( 0x$(awk '/^CapEff/ {print $2}' /proc/self/status) >> 14 & 1 )) = 1 ] ||
        [ "$(ulimit -l)" = unlimited ]; then
        unbounded=1
        run 0 "$CHECK"
        has "ferry-check: WARNING nothing bounds the memory registrations pin"
        has "fix: set FERRY_MAX_REGISTERED_BYTES"
        has "ferry-check: healthy"
    fi
    # UCX's InfiniBand registration cache, on a host with IB (fake ucx_info).
    [ "${FERRY_TEST_UCX:-0}" = 1 ] || return 0
    export FERRY_UCX_INFO=$FERRY_TEST_FAKE_UCX_INFO FERRY_MAX_REGISTERED_BYTES=1M
    if [ $unbounded = 1 ]; then
        run 0 "$CHECK"
        has "WARNING UCX's InfiniBand registration cache is unbounded (UCX_IB_RCACHE_MAX_SIZE=inf, UCX's default)"
        has "fix: set UCX_IB_RCACHE_MAX_SIZE below MemAvailable"
    fi
    UCX_IB_RCACHE_MAX_SIZE=1T run 0 "$CHECK"
    has "WARNING UCX_IB_RCACHE_MAX_SIZE (1 TiB) is above the host's MemAvailable"
    UCX_IB_RCACHE_MAX_SIZE=64M run 0 "$CHECK"
    lacks "UCX_IB_RCACHE_MAX_SIZE"
    unset FERRY_UCX_INFO FERRY_MAX_REGISTERED_BYTES
}

# The limit bites only without CAP_IPC_LOCK (root has it): setpriv drops it.
case_check_memlock() {
    local drop=()
    if [ $(( 0x$(awk '/^CapEff/ {print $2}' /proc/self/status) >> 14 & 1 )) = 1 ]; then
        command -v setpriv >/dev/null || { echo "SKIP: CAP_IPC_LOCK and no setpriv"; exit 77; }
        drop=(setpriv --inh-caps=-ipc_lock --bounding-set=-ipc_lock)
    fi
    (
        ulimit -l 64 # soft and hard: 64 KiB
        run 1 "${drop[@]}" "$CHECK" --reg-bytes 1M
        problems 1
        has "ferry-check: PROBLEM locked-memory limit (ulimit -l) is 64 KiB, below the 1 MiB to register; fix: raise the hard limit"
        run 0 "${drop[@]}" "$CHECK" --reg-bytes 32K
    ) || exit 1
    local hard
    hard=$(ulimit -H -l)
    if [ "$hard" = unlimited ] || [ "$hard" -ge 1024 ]; then
        (
            ulimit -S -l 64 # the hard limit allows 1 MiB: raising the soft one is the fix
            run 1 "${drop[@]}" "$CHECK" --reg-bytes 1M
            has "fix: raise it where the process starts: ulimit -l 1024 (KiB)"
        ) || exit 1
    fi
    if [ ${#drop[@]} -gt 0 ]; then
        (
            ulimit -l 64
            run 0 "$CHECK" -v --reg-bytes 1G
            has "but CAP_IPC_LOCK lifts it"
        ) || exit 1
    fi
    run 2 "$CHECK" --reg-bytes lots
}

# UCX_TLS against a fake ucx_info describing an InfiniBand host.
case_check_ucx_tls() {
    need_ucx
    export FERRY_UCX_INFO=$FERRY_TEST_FAKE_UCX_INFO
    UCX_TLS=rc,sm,tcp,self,ud:aux run 0 "$CHECK" -v
    has "ok: UCX_TLS entry rc: UCX has it"
    has "ok: UCX_TLS entry sm: UCX has it"
    UCX_TLS=^rc run 0 "$CHECK"
    UCX_TLS=rc_x,dc,cma,nosuch_tl run 1 "$CHECK"
    problems 3
    has "PROBLEM UCX_TLS asks for dc but UCX here has no such transport (dc_mlx5)"
    has "PROBLEM UCX_TLS asks for cma but UCX here has no cma transport"
    has "PROBLEM UCX_TLS asks for nosuch_tl "
    run 1 "$CHECK" --tls shm,xpmem
    problems 1
    has "PROBLEM --tls asks for xpmem"
    UCX_NET_DEVICES=mlx5_0:1,eth0 run 0 "$CHECK"
    UCX_NET_DEVICES=mlx5_3:1 run 1 "$CHECK"
    has "PROBLEM UCX_NET_DEVICES names mlx5_3:1, which UCX does not see; fix: use devices UCX lists (eth0, mlx5_0:1)"
    # Without ucx_info nothing can be compared: a note, not a problem.
    FERRY_UCX_INFO=/nonexistent/ucx_info UCX_TLS=tcp run 0 "$CHECK"
    has "note: cannot check UCX's transports"
}

case_check_gpu() {
    # Not asked: no GPU check on a host without one.
    FERRY_CUDA_LIB=/nonexistent/libcuda.so.1 run 0 "$CHECK"
    lacks "CUDA driver"
    FERRY_CUDA_LIB=/nonexistent/libcuda.so.1 run 1 "$CHECK" --gpu
    has "ferry-check: PROBLEM no CUDA driver: "
    FERRY_CUFILE_LIB=/nonexistent/libcufile.so.0 FERRY_CUDA_LIB=/nonexistent/libcuda.so.1 \
        run 1 "$CHECK" --gds
    problems 2
    has "PROBLEM cuFile (/nonexistent/libcufile.so.0) not found"
    if [ -n "${FERRY_TEST_MOCK_CUDA:-}" ]; then
        export FERRY_CUDA_LIB=$FERRY_TEST_MOCK_CUDA
        FY_MOCK_GPUS=2 run 0 "$CHECK" -v --gpu
        has "ok: CUDA driver $FERRY_TEST_MOCK_CUDA (CUDA 13.0): 2 GPU(s)"
        FY_MOCK_GPUS=0 run 1 "$CHECK" --gpu
        has "sees no GPU"
        FY_MOCK_INIT_ERROR=100 run 1 "$CHECK" --gpu
        has "cuInit failed: CUDA_ERROR_NO_DEVICE"
        # GPU use configured through UCX_TLS counts as asking.
        FY_MOCK_GPUS=0 UCX_TLS=tcp,cuda_copy FERRY_UCX_INFO=/nonexistent run 1 "$CHECK"
        has "sees no GPU"
    fi
}

# --storage: O_DIRECT in a dir (the temp dir's file system here), a dir
# that does not exist.
case_check_storage() {
    [ "${FERRY_TEST_POSIX:-0}" = 1 ] || { echo "SKIP: the POSIX plugin was not built"; exit 77; }
    local dir
    dir=$(mktemp -d)
    if ! python3 -c "import os,sys; os.close(os.open(sys.argv[1] + '/p', os.O_CREAT | os.O_RDWR | os.O_DIRECT))" "$dir" 2>/dev/null; then
        rm -rf "$dir"
        echo "SKIP: the temp dir's file system refuses O_DIRECT"
        exit 77
    fi
    rm -f "$dir/p"
    run 0 "$CHECK" -v --storage "$dir"
    has "ok: plugin POSIX loads"
    has "takes O_DIRECT"
    [ -z "$(ls -A "$dir")" ] || fail "ferry-check left its scratch file in $dir"
    run 1 "$CHECK" --storage "$dir/none"
    has "--storage $dir/none"
    rm -rf "$dir"
}

case_check_usage() {
    run 2 "$CHECK" --nosuch
    run 2 "$CHECK" --timeout-ms 0
    run 2 "$CHECK" extra
    run 0 "$CHECK" --help
    has "--reg-bytes"
    has "--storage DIR"
}

case=${1:?usage: tools_info_test.sh CASE}
declare -F "case_$case" >/dev/null || { echo "unknown case $case"; exit 1; }
"case_$case"
echo "PASS: $case"
