#!/usr/bin/env bash
# By hand (docs/status.md, issue 15): one region against many small ones. Starts 3 release-build
# nodes on loopback with --region-split-size SIZE, loads ~100k keys of 100 bytes, counts the
# regions, measures the nodes' idle CPU for 10 s, then redis-benchmark SET and GET at node 1
# with the nodes' CPU. Usage: bench/small_regions.sh 96MiB one; bench/small_regions.sh 16KiB many
set -u
BIN=${MICEDB_BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/release/src/cli/micedb}
SPLIT=${1:?size, e.g. 96MiB or 16KiB}
TAG=${2:-run}
D=$(mktemp -d /tmp/micedb-small-regions.XXXXXX)
peers="1=127.0.0.1:21161,2=127.0.0.1:21162,3=127.0.0.1:21163"
pids=()
for i in 1 2 3; do
  $BIN start --node-id $i --data-dir $D/n$i --listen-peer 127.0.0.1:2116$i --listen-redis 127.0.0.1:1638$i \
    --listen-pg 127.0.0.1:1543$i --listen-http 127.0.0.1:1808$i --initial-peers $peers \
    --region-split-size $SPLIT --log-level warn > $D/n$i.log 2>&1 &
  pids+=($!)
done
for t in $(seq 1 100); do redis-cli -p 16381 set ready 1 2>/dev/null | grep -q OK && break; sleep 0.2; done
# load ~100k keys of 100 bytes
redis-benchmark -p 16381 -t set -r 100000 -n 300000 -d 100 -c 50 -P 16 -q > /dev/null 2>&1
sleep 3
regions=$(curl -s 127.0.0.1:18081/debug/raft | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(1 for r in d["regions"] if r["id"]!=2 and r["voters"]))')
leaders=$(curl -s 127.0.0.1:18081/debug/raft | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(1 for r in d["regions"] if r["id"]!=2 and r["role"]=="leader"))')
echo "$TAG: split-size $SPLIT: $regions data regions on node 1, $leaders led there"
cpu() { local s=0; for p in "${pids[@]}"; do s=$((s + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $s; }
c0=$(cpu); sleep 10; c1=$(cpu)
echo "$TAG: idle CPU over 10 s, 3 nodes together: $(( (c1-c0) )) ticks (of 1000 per core-10s)"
for t in set get; do
  c0=$(cpu)
  out=$(redis-benchmark -p 16381 -t $t -r 100000 -n 100000 -d 100 -c 50 -q 2>/dev/null | tr '\r' '\n' | grep -i "requests per second" | tail -1)
  c1=$(cpu)
  echo "$TAG: $t: $out; node CPU ticks $((c1-c0))"
done
kill "${pids[@]}"; sleep 5; kill -9 "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$D"
