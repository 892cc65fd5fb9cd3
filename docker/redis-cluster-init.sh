#!/bin/sh
# Creates the Redis Cluster once (3 masters + 3 replicas) and exits 0 when every node reports
# cluster_state:ok. Idempotent: on later `docker compose up` runs the nodes reload their nodes.conf, the
# cluster re-forms by itself and this script only waits for it.
#
#   REDIS_NODES="host:port host:port …"  the six nodes (service names or IPs)
#   REDIS_CLUSTER_REPLICAS               replicas per master (default 1)
#   REDIS_CLUSTER_WAIT_SECONDS           how long to wait for cluster_state:ok (default 120)
set -eu

NODES=${REDIS_NODES:?set REDIS_NODES to "host:port host:port ..."}
REPLICAS=${REDIS_CLUSTER_REPLICAS:-1}
WAIT=${REDIS_CLUSTER_WAIT_SECONDS:-120}

field() { # field <host> <port> <name>: one field of CLUSTER INFO
  redis-cli -h "$1" -p "$2" cluster info 2>/dev/null | tr -d '\r' | sed -n "s/^$3://p"
}

all_ok() {
  for node in $NODES; do
    [ "$(field "${node%:*}" "${node##*:}" cluster_state)" = ok ] || return 1
  done
}

# A node that already knows other nodes or holds slots was part of a cluster: never create over it.
all_empty() {
  for node in $NODES; do
    host=${node%:*} port=${node##*:}
    [ "$(field "$host" "$port" cluster_known_nodes)" = 1 ] || return 1
    [ "$(field "$host" "$port" cluster_slots_assigned)" = 0 ] || return 1
  done
}

# Every node must answer before anything is decided.
for node in $NODES; do
  i=0
  until redis-cli -h "${node%:*}" -p "${node##*:}" ping 2>/dev/null | grep -q PONG; do
    i=$((i + 1))
    [ "$i" -le "$WAIT" ] || { echo "redis-cluster-init: $node does not answer" >&2; exit 1; }
    sleep 1
  done
done

if all_ok; then
  echo "redis-cluster-init: cluster_state:ok already, nothing to do"
  exit 0
fi

if all_empty; then
  # CLUSTER MEET takes IP addresses (Redis 7.0 does not resolve hostnames), so resolve the names first.
  addresses=
  for node in $NODES; do
    host=${node%:*} port=${node##*:}
    # The first word of getent's first line is the address (no awk needed in the redis image).
    ip=$(getent hosts "$host" | { read -r address _ && echo "$address"; } || true)
    [ -n "$ip" ] || { echo "redis-cluster-init: cannot resolve $host" >&2; exit 1; }
    addresses="$addresses $ip:$port"
  done
  echo "redis-cluster-init: creating the cluster on$addresses"
  # shellcheck disable=SC2086 # one argument per node
  redis-cli --cluster create $addresses --cluster-replicas "$REPLICAS" --cluster-yes
else
  echo "redis-cluster-init: nodes already belong to a cluster, waiting for it to re-form"
fi

i=0
until all_ok; do
  i=$((i + 1))
  if [ "$i" -gt "$WAIT" ]; then
    echo "redis-cluster-init: cluster_state is not ok after ${WAIT}s" >&2
    for node in $NODES; do echo "$node: $(field "${node%:*}" "${node##*:}" cluster_state)" >&2; done
    exit 1
  fi
  sleep 1
done
echo "redis-cluster-init: cluster_state:ok on every node"
