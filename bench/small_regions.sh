#!/usr/bin/env bash
# By hand (docs/status.md, issue 15): one region against many small ones. Starts 3 release-build
# nodes on loopback with --region-split-size SIZE, loads ~100k keys of 100 bytes, counts the
# regions, waits until the count holds still, measures each node's idle CPU for IDLE_SECS (20),
# then redis-benchmark SET and GET at node 1 with the nodes' CPU.
# Usage: bench/small_regions.sh 96MiB one; bench/small_regions.sh 16KiB many [KEYS]
# HIBERNATE=false turns region hibernation off (--hibernate-regions), for a side-by-side run.
set -u
BIN=${MICEDB_BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/release/src/cli/micedb}
SPLIT=${1:?size, e.g. 96MiB or 16KiB}
TAG=${2:-run}
KEYS=${3:-100000}
HIBERNATE=${HIBERNATE:-true}
IDLE_SECS=${IDLE_SECS:-20}
D=$(mktemp -d /tmp/micedb-small-regions.XXXXXX)
peers="1=127.0.0.1:21161,2=127.0.0.1:21162,3=127.0.0.1:21163"
pids=()
for i in 1 2 3; do
  $BIN start --node-id $i --data-dir $D/n$i --listen-peer 127.0.0.1:2116$i --listen-redis 127.0.0.1:1638$i \
    --listen-pg 127.0.0.1:1543$i --listen-http 127.0.0.1:1808$i --initial-peers $peers \
    --region-split-size $SPLIT --hibernate-regions $HIBERNATE --no-region-merge --log-level warn > $D/n$i.log 2>&1 &
  pids+=($!)
done
for t in $(seq 1 100); do redis-cli -p 16381 set ready 1 2>/dev/null | grep -q OK && break; sleep 0.2; done
# load ~KEYS keys of 100 bytes
redis-benchmark -p 16381 -t set -r $KEYS -n $((KEYS * 3)) -d 100 -c 50 -P 16 -q > /dev/null 2>&1
count() { curl -s 127.0.0.1:18081/debug/raft | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(1 for r in d["regions"] if r["id"]!=2 and r["voters"]))'; }
last=-1; same=0
for t in $(seq 1 120); do
  n=$(count); if [ "$n" = "$last" ]; then same=$((same + 1)); else same=0; last=$n; fi
  [ $same -ge 5 ] && break; sleep 2
done
regions=$(curl -s 127.0.0.1:18081/debug/raft | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(1 for r in d["regions"] if r["id"]!=2 and r["voters"]))')
leaders=$(curl -s 127.0.0.1:18081/debug/raft | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(1 for r in d["regions"] if r["id"]!=2 and r["role"]=="leader"))')
echo "$TAG: split-size $SPLIT: $regions data regions on node 1, $leaders led there"
cpu() { local s=0; for p in "${pids[@]}"; do s=$((s + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $s; }
sleep 5
asleep=$(curl -s 127.0.0.1:18081/metrics | awk '/^micedb_regions_asleep /{print $2}')
cpu1() { awk '{print $14+$15}' /proc/$1/stat; }
declare -A b
for p in "${pids[@]}"; do b[$p]=$(cpu1 $p); done
sleep $IDLE_SECS
line=""
for p in "${pids[@]}"; do
  line="$line $(awk -v d=$(( $(cpu1 $p) - ${b[$p]} )) -v s=$IDLE_SECS 'BEGIN{printf "%.2f%%", d/s}')"
done
echo "$TAG: hibernate=$HIBERNATE, $asleep replicas asleep on node 1; idle CPU per node over $IDLE_SECS s (% of a core):$line"
for t in set get; do
  c0=$(cpu)
  out=$(redis-benchmark -p 16381 -t $t -r 100000 -n 100000 -d 100 -c 50 -q 2>/dev/null | tr '\r' '\n' | grep -i "requests per second" | tail -1)
  c1=$(cpu)
  echo "$TAG: $t: $out; node CPU ticks $((c1-c0))"
done
kill "${pids[@]}"; sleep 5; kill -9 "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$D"
