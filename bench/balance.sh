#!/usr/bin/env bash
# By hand (issue 15's target: 3 stores, then 2 added, 300 regions: the stores' region counts
# within +-10% of the mean in 5 minutes). Starts 3 release-build nodes on loopback, writes KEYS
# keys of 100 bytes, splits the keyspace into REGIONS regions with `micedb region split`, starts
# two more nodes that join, and prints every 10 s the replicas each store holds (from the
# coordinator's directory) until every store is within 10% of the mean.
# Usage: bench/balance.sh [REGIONS] [KEYS]
set -u
BIN=${MICEDB_BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/release/src/cli/micedb}
REGIONS=${1:-300}
KEYS=${2:-30000}
LIMIT_SECS=${LIMIT_SECS:-600}
D=$(mktemp -d /tmp/micedb-balance.XXXXXX)
peers="1=127.0.0.1:21161,2=127.0.0.1:21162,3=127.0.0.1:21163"
pids=()
for i in 1 2 3; do
  $BIN start --node-id $i --data-dir $D/n$i --listen-peer 127.0.0.1:2116$i \
    --listen-redis 127.0.0.1:1638$i --listen-pg 127.0.0.1:1543$i \
    --listen-http 127.0.0.1:1808$i --initial-peers $peers --region-split-size 96MiB \
    --no-region-merge --log-level warn > $D/n$i.log 2>&1 &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null; sleep 3; kill -9 "${pids[@]}" 2>/dev/null; rm -rf "$D"' EXIT
for t in $(seq 1 100); do redis-cli -p 16381 set ready 1 2>/dev/null | grep -q OK && break; sleep 0.2; done
redis-benchmark -p 16381 -t set -r $KEYS -n $((KEYS * 2)) -d 100 -c 20 -P 16 -q > /dev/null 2>&1
step=$((KEYS / REGIONS))
made=0
for k in $(seq $step $step $((KEYS - 1))); do
  [ $made -ge $((REGIONS - 1)) ] && break
  $BIN region split "$(printf 'key:%012d' $k)" --via 127.0.0.1:21161 --timeout 30 > /dev/null 2>&1 &&
    made=$((made + 1))
done
echo "$made splits; 3 stores; adding 2"
for i in 4 5; do
  $BIN start --data-dir $D/n$i --join 127.0.0.1:21161 --listen-peer 127.0.0.1:2116$i \
    --listen-redis 127.0.0.1:1638$i --listen-pg 127.0.0.1:1543$i \
    --listen-http 127.0.0.1:1808$i --region-split-size 96MiB --no-region-merge --log-level warn > $D/n$i.log 2>&1 &
  pids+=($!)
done
start=$(date +%s)
while true; do
  el=$(($(date +%s) - start))
  line=$(curl -s 127.0.0.1:18081/api/v1/regions | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
count = {}
for r in d["regions"]:
    cs = r["meta"]["region"].get("confState", {})
    for s in cs.get("voters", []) + cs.get("learners", []):
        count[int(s)] = count.get(int(s), 0) + 1
stores = sorted(count)
mean = sum(count.values()) / 5
ok = len(stores) == 5 and all(abs(count[s] - mean) <= 0.1 * mean for s in stores)
print(("BALANCED " if ok else "") + " ".join(f"{s}:{count[s]}" for s in stores))
' 2>/dev/null)
  echo "${el}s: replicas per store: $line"
  case "$line" in BALANCED*) echo "balanced after ${el}s"; break ;; esac
  [ $el -ge $LIMIT_SECS ] && { echo "not balanced after ${el}s"; break; }
  sleep 10
done
