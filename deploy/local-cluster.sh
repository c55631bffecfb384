#!/usr/bin/env bash
# A real two-node Ray cluster on this machine: a head node and a worker node,
# each started with `ray start` and its own resources, with token auth
# (Ray 2.60: a multi-node cluster only forms with RAY_AUTH_MODE=token set for
# the head, every worker and every client; the token is ~/.ray/auth_token).
#
#   deploy/local-cluster.sh start     # head + worker
#   deploy/local-cluster.sh status    # ray status
#   deploy/local-cluster.sh stop      # stops them (and every Ray process of this user)
#
# Then, with RAY_AUTH_MODE=token in the environment:
#   netcabal run scenarios/quickstart.toml --engine ray --address 127.0.0.1:6390
#   netcabal submit scenarios/quickstart.toml --address http://127.0.0.1:8266
#
# Ports: NETCABAL_RAY_PORT (GCS, default 6390), NETCABAL_DASHBOARD_PORT (8266).
set -euo pipefail
export RAY_AUTH_MODE=token
PORT=${NETCABAL_RAY_PORT:-6390}
DASH=${NETCABAL_DASHBOARD_PORT:-8266}
HEAD_CPUS=${NETCABAL_HEAD_CPUS:-1}
WORKER_CPUS=${NETCABAL_WORKER_CPUS:-1}
RAY=${RAY:-ray}

case "${1:-}" in
start)
    # a fresh machine has no token yet: make one (ray start will not)
    if [ -z "${RAY_AUTH_TOKEN:-}" ] && [ ! -s "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}" ]; then
        "$RAY" get-auth-token --generate >/dev/null
    fi
    "$RAY" start --head --node-ip-address=127.0.0.1 --port="$PORT" \
        --dashboard-host=127.0.0.1 --dashboard-port="$DASH" \
        --num-cpus="$HEAD_CPUS" --resources='{"netcabal_head": 1}' \
        --disable-usage-stats >/dev/null
    "$RAY" start --address="127.0.0.1:$PORT" --node-ip-address=127.0.0.1 \
        --num-cpus="$WORKER_CPUS" --resources='{"netcabal_worker": 1}' \
        --disable-usage-stats >/dev/null
    # wait until both nodes are registered
    for _ in $(seq 1 60); do
        n=$("$RAY" status --address="127.0.0.1:$PORT" 2>/dev/null | grep -c "node_" || true)
        [ "$n" -ge 2 ] && break
        sleep 1
    done
    echo "ray cluster up: GCS 127.0.0.1:$PORT, dashboard http://127.0.0.1:$DASH (2 nodes)"
    ;;
stop)
    "$RAY" stop --force >/dev/null 2>&1 || true
    echo "ray cluster stopped"
    ;;
status)
    "$RAY" status --address="127.0.0.1:$PORT"
    ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
