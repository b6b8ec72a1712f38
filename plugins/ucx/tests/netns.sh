#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shellcheck disable=SC2317 # cleanup and on_signal run from traps
# The two-process tests across two network namespaces joined by a veth
# pair, over TCP only: a cross-host path on one machine (UCX, or LIBFABRIC
# when FY_RT_BACKEND says so).
#
#   netns.sh DRIVER PEER [more driver args]
#
# Makes namespaces fy-rt-a-PID and fy-rt-b-PID and a veth pair fyraPID
# (10.77.0.1/24, in a) <-> fyrbPID (10.77.0.2/24, in b); runs DRIVER in a,
# which starts PEER in b (ip netns exec) and binds each listener to its veth
# address; removes everything at exit, on failure and on SIGTERM/SIGINT too
# (deleting a namespace deletes the veth end inside it, and so the pair).
# Names carry the PID, so concurrent runs do not collide. The run is bounded
# by FY_NETNS_TIMEOUT seconds (default 110). Prints a TAP skip and exits 77
# when namespaces cannot be made here (no iproute2, not root / no
# CAP_NET_ADMIN, no veth support).
#
# LIBFABRIC over two rails (FY_NETNS_RAILS=2): a second veth pair fyrcPID
# (10.78.0.1/24, in a) <-> fyrdPID (10.78.0.2/24, in b); the driver gets
# rails=fyraPID,fyrcPID, the peer the same two of its side, or only its
# first (FY_NETNS_PEER_RAILS=1: a peer with fewer rails). After the run,
# the bytes each of the driver's veths carried (its interface counters)
# must be at least FY_NETNS_RAIL_MIN (default 4 MiB) on every rail the
# peer shares, and below 1 MiB on a rail it does not.
set -u
[ $# -ge 2 ] || { echo "usage: netns.sh DRIVER PEER [driver args]" >&2; exit 2; }
driver=$1 peer=$2
shift 2
ns_a=fy-rt-a-$$ ns_b=fy-rt-b-$$
veth_a=fyra$$ veth_b=fyrb$$
addr_a=10.77.0.1 addr_b=10.77.0.2
rails=${FY_NETNS_RAILS:-1} peer_rails=${FY_NETNS_PEER_RAILS:-${FY_NETNS_RAILS:-1}}
veth_c=fyrc$$ veth_d=fyrd$$
addr_c=10.78.0.1 addr_d=10.78.0.2
limit=${FY_NETNS_TIMEOUT:-110}

skip() {
    echo "1..0 # SKIP $*"
    exit 77
}

run_pid=
cleanup() {
    ip netns del "$ns_a" 2>/dev/null
    ip netns del "$ns_b" 2>/dev/null
    ip link del "$veth_a" 2>/dev/null # only if it never moved into a
    ip link del "$veth_c" 2>/dev/null
}

# The driver runs in the background so that a signal reaches this trap at
# once (sh defers traps while a foreground child runs); the driver, told
# to stop, kills its peers before the namespaces go.
on_signal() {
    if [ -n "$run_pid" ]; then
        kill -TERM "$run_pid" 2>/dev/null
        wait "$run_pid"
    fi
    exit "$1"
}

command -v ip >/dev/null 2>&1 || skip "ip (iproute2) not installed"
command -v timeout >/dev/null 2>&1 || skip "timeout (coreutils) not installed"
trap cleanup EXIT
trap 'on_signal 143' TERM
trap 'on_signal 130' INT

err=$(ip netns add "$ns_a" 2>&1) || skip "cannot create a network namespace: $err"
err=$(ip netns add "$ns_b" 2>&1) || skip "cannot create a network namespace: $err"
err=$(ip link add "$veth_a" type veth peer name "$veth_b" 2>&1) ||
    skip "cannot create a veth pair: $err"

# One end with its address into each namespace, links up.
side() { # ns veth addr
    ip link set "$2" netns "$1" &&
        ip -n "$1" addr add "$3/24" dev "$2" &&
        ip -n "$1" link set "$2" up &&
        ip -n "$1" link set lo up
}
if ! side "$ns_a" "$veth_a" "$addr_a" || ! side "$ns_b" "$veth_b" "$addr_b"; then
    echo "Bail out! could not set up the veth pair"
    exit 1
fi
if [ "$rails" = 2 ] && ! { ip link add "$veth_c" type veth peer name "$veth_d" &&
    side "$ns_a" "$veth_c" "$addr_c" && side "$ns_b" "$veth_d" "$addr_d"; }; then
    echo "Bail out! could not set up the second veth pair"
    exit 1
fi

# The carrier comes up once both ends are up; wait for it, bounded.
carrier() { # veth
    tries=0
    until ip -n "$ns_a" link show "$1" | grep -q LOWER_UP; do
        tries=$((tries + 1))
        if [ $tries -gt 50 ]; then
            echo "Bail out! $1 has no carrier after 5 s"
            exit 1
        fi
        sleep 0.1
    done
}
carrier "$veth_a"
[ "$rails" = 2 ] && carrier "$veth_c"

# Bytes a veth of the driver's side sent and received.
carried() { # veth
    ip netns exec "$ns_a" sh -c "echo \$((\$(cat /sys/class/net/$1/statistics/tx_bytes) + \
        \$(cat /sys/class/net/$1/statistics/rx_bytes)))"
}

# Each side bound to its veth: UCX by its TCP device, LIBFABRIC (the
# backend FY_RT_BACKEND names) by the tcp provider's domain.
if [ "${FY_RT_BACKEND:-UCX}" = LIBFABRIC ] && [ "$rails" = 2 ]; then
    theirs=$veth_b
    [ "$peer_rails" = 2 ] && theirs=$veth_b,$veth_d
    set -- "provider=tcp;ofi_rxm" --param "rails=$veth_a,$veth_c" --peer-param "rails=$theirs" "$@"
    how="LIBFABRIC over tcp;ofi_rxm, rails $veth_a,$veth_c (peer: $theirs)"
elif [ "${FY_RT_BACKEND:-UCX}" = LIBFABRIC ]; then
    set -- "provider=tcp;ofi_rxm" --param "domain=$veth_a" --peer-param "domain=$veth_b" "$@"
    how="LIBFABRIC over tcp;ofi_rxm"
else
    set -- tls=tcp --param "devices=$veth_a" --peer-param "devices=$veth_b" "$@"
    how="UCX_TLS=tcp"
fi
echo "# driver in $ns_a ($veth_a $addr_a), peer in $ns_b ($veth_b $addr_b), $how"
UCX_TLS=tcp timeout -k 5 "$limit" ip netns exec "$ns_a" "$driver" "$peer" \
    --host "$addr_a" --peer-host "$addr_b" --peer-ns "$ns_b" "$@" &
run_pid=$!
wait "$run_pid"
rc=$?
run_pid=
[ $rc -eq 124 ] && echo "Bail out! timed out after $limit s"
[ $rc -ne 0 ] || [ "$rails" != 2 ] && exit $rc

# Both rails carried the data (or only the shared one did).
min=${FY_NETNS_RAIL_MIN:-4194304}
on_a=$(carried "$veth_a") on_c=$(carried "$veth_c")
echo "# bytes carried: $veth_a $on_a, $veth_c $on_c"
if [ "$on_a" -lt "$min" ]; then
    echo "Bail out! rail $veth_a carried $on_a bytes, under $min"
    exit 1
fi
if [ "$peer_rails" = 2 ] && [ "$on_c" -lt "$min" ]; then
    echo "Bail out! rail $veth_c carried $on_c bytes, under $min"
    exit 1
fi
if [ "$peer_rails" = 1 ] && [ "$on_c" -ge 1048576 ]; then
    echo "Bail out! rail $veth_c, which the peer lacks, carried $on_c bytes"
    exit 1
fi
exit 0
