#!/usr/bin/env bash
# By hand (issue 15, merge: docs/sharding.md §2). Starts 3 release-build nodes on loopback with
# the merge checker on, writes KEYS keys of 100 bytes, splits the keyspace into REGIONS regions
# with `micedb region split`, then:
#   1. merges MANUAL of them back one at a time with `micedb region merge` under a
#      redis-benchmark SET load, timing each from the command to the source being gone from
#      every node's /debug/raft, and counting the load's errors;
#   2. leaves the rest to the merge checker (--region-merge, idle after IDLE) and prints every
#      5 s how many data regions each node holds, until one is left or LIMIT_SECS pass.
# Usage: bench/merge.sh [REGIONS] [KEYS] [MANUAL]
set -u
BIN=${MICEDB_BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/release/src/cli/micedb}
REGIONS=${1:-60}
KEYS=${2:-30000}
MANUAL=${3:-10}
IDLE=${IDLE:-5s}
LIMIT_SECS=${LIMIT_SECS:-300}
D=$(mktemp -d /tmp/micedb-merge.XXXXXX)
peers="1=127.0.0.1:22161,2=127.0.0.1:22162,3=127.0.0.1:22163"
pids=()
for i in 1 2 3; do
  $BIN start --node-id $i --data-dir $D/n$i --listen-peer 127.0.0.1:2216$i \
    --listen-redis 127.0.0.1:1738$i --listen-pg 127.0.0.1:1643$i \
    --listen-http 127.0.0.1:1908$i --initial-peers $peers --region-split-size 96MiB \
    --region-merge --region-merge-idle $IDLE --log-level warn > $D/n$i.log 2>&1 &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null; sleep 3; kill -9 "${pids[@]}" 2>/dev/null; rm -rf "$D"' EXIT
for t in $(seq 1 100); do redis-cli -p 17381 set ready 1 2>/dev/null | grep -q OK && break; sleep 0.2; done
redis-benchmark -p 17381 -t set -r $KEYS -n $((KEYS * 2)) -d 100 -c 20 -P 16 -q > /dev/null 2>&1
step=$((KEYS / REGIONS))
made=0
for k in $(seq $step $step $((KEYS - 1))); do
  [ $made -ge $((REGIONS - 1)) ] && break
  $BIN region split "$(printf 'key:%012d' $k)" --via 127.0.0.1:22161 --timeout 30 > /dev/null 2>&1 &&
    made=$((made + 1))
done
echo "$made splits"
regions() {  # "id start end role" per data region of node $1 (- and + for the open ends)
  curl -s 127.0.0.1:1908$1/debug/raft | /usr/bin/python3 -c '
import json, sys
for r in json.load(sys.stdin)["regions"]:
    if r["id"] != 2 and r["voters"]:
        print(r["id"], r["start_key"] or "-", r["end_key"] or "+", r["role"])'
}
# 1. By hand, under load: the SET load runs through node 1 meanwhile.
redis-benchmark -p 17381 -t set -r $KEYS -n 100000000 -d 100 -c 20 > $D/load.txt 2>&1 &
load=$!
sleep 2
times=()
for m in $(seq 1 $MANUAL); do
  # A region led by node 1 and its left neighbour.
  pair=$(regions 1 | sort -k2 | awk 'prev != "" && $4 == "leader" {print $1, prev; exit} {prev = $1}')
  [ -z "$pair" ] && break
  set -- $pair
  t0=$(date +%s.%N)
  $BIN region merge $1 $2 --via 127.0.0.1:22161 --timeout 10 > /dev/null 2>&1 || { echo "merge $1 into $2 refused"; continue; }
  while :; do
    gone=1
    for i in 1 2 3; do regions $i | awk '{print $1}' | grep -qx "$1" && gone=0; done
    [ $gone = 1 ] && break
    sleep 0.02
  done
  t1=$(date +%s.%N)
  times+=($(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1000 }'))
done
kill $load 2>/dev/null; wait $load 2>/dev/null
echo "manual merges under load, ms from the command to the source gone everywhere: ${times[*]}"
echo "load errors: $(grep -ci 'err' $D/load.txt)"
# 2. The merge checker.
start=$(date +%s)
while true; do
  el=$(($(date +%s) - start))
  counts="$(for i in 1 2 3; do regions $i | wc -l; done | tr '\n' ' ')"
  echo "${el}s: data regions per node: $counts"
  case "$counts" in "1 1 1 ") echo "merged down to one region after ${el}s"; break ;; esac
  [ $el -ge $LIMIT_SECS ] && { echo "not merged down after ${el}s"; break; }
  sleep 5
done
for i in 1 2 3; do redis-cli -p 1738$i dbsize; done
