#!/usr/bin/env bash
# By hand (issue 15's targets: a store killed with 1 GiB of data has every region back to three
# healthy replicas within --store-down-time + 2 minutes, snapshots at 50 MiB/s or more on
# loopback; a decommission of a store holding 1 GiB finishes within 3 minutes). Starts 3
# release-build nodes and a 4th and 5th that join, writes about MIB MiB (1024) of 16 KiB values
# (each key about once: the bytes, not the requests, are the point), waits
# for the balancer to settle, kills -9 the store holding the most replicas and times the
# re-replication (from the moment the store counts as down), then decommissions another store
# and times that. Snapshot bytes and seconds come from the senders' logs.
# Usage: bench/rereplicate.sh [MIB]; DOWN=20s sets --store-down-time (default 20s).
set -u
BIN=${MICEDB_BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/release/src/cli/micedb}
MIB=${1:-1024}
DOWN=${DOWN:-20s}
D=$(mktemp -d /tmp/micedb-rerep.XXXXXX)
peers="1=127.0.0.1:21161,2=127.0.0.1:21162,3=127.0.0.1:21163"
declare -A pid
common=(--store-down-time "$DOWN" --log-level info)
for i in 1 2 3; do
  $BIN start --node-id $i --data-dir $D/n$i --listen-peer 127.0.0.1:2116$i \
    --listen-redis 127.0.0.1:1638$i --listen-pg 127.0.0.1:1543$i \
    --listen-http 127.0.0.1:1808$i --initial-peers $peers "${common[@]}" > $D/n$i.log 2>&1 &
  pid[$i]=$!
done
trap 'kill "${pid[@]}" 2>/dev/null; sleep 3; kill -9 "${pid[@]}" 2>/dev/null; rm -rf "$D"' EXIT
for t in $(seq 1 100); do redis-cli -p 16381 set ready 1 2>/dev/null | grep -q OK && break; sleep 0.2; done
keys=$((MIB * 64))
t0=$(date +%s)
# -r draws keys at random: 2x the keys in requests leaves about 86% of them written.
redis-benchmark -p 16381 -t set -r $keys -n $((keys * 2)) -d 16384 -c 20 -P 4 -q > /dev/null 2>&1
echo "wrote $((keys * 2)) x 16 KiB over $keys keys in $(($(date +%s) - t0)) s; node 1 holds" \
  "$(curl -s 127.0.0.1:18081/metrics | awk '/^micedb_storage_bytes\{cf="default"\}/{printf "%.0f MiB", $2/1048576}')"
for i in 4 5; do
  $BIN start --data-dir $D/n$i --join 127.0.0.1:21161 --listen-peer 127.0.0.1:2116$i \
    --listen-redis 127.0.0.1:1638$i --listen-pg 127.0.0.1:1543$i \
    --listen-http 127.0.0.1:1808$i "${common[@]}" > $D/n$i.log 2>&1 &
  pid[$i]=$!
done
view() {
  curl -s 127.0.0.1:1808$1/api/v1/regions | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
dead = int(sys.argv[1])
count, bad = {}, 0
for r in d["regions"]:
    cs = r["meta"]["region"].get("confState", {})
    voters = [int(v) for v in cs.get("voters", [])]
    for s in voters + [int(v) for v in cs.get("learners", [])]:
        count[s] = count.get(s, 0) + 1
    if len(voters) != 3 or dead in voters or cs.get("learners"):
        bad += 1
print(len(d["regions"]), bad, " ".join(f"{s}:{count[s]}" for s in sorted(count)))
' "$2" 2>/dev/null
}
# Settled: the same placement for 30 s.
last=""; same=0
for t in $(seq 1 120); do
  now=$(view 1 0)
  if [ "$now" = "$last" ]; then same=$((same + 1)); else same=0; last=$now; fi
  [ $same -ge 6 ] && break
  sleep 5
done
echo "settled: regions, unhealthy, replicas per store: $now"
victim=$(echo "$now" | tr ' ' '\n' | grep : | sort -t: -k2 -n | tail -1 | cut -d: -f1)
# Ask a node other than the victim.
ask=1; [ "$victim" = 1 ] && ask=2
# The joiners' ids are not 4 and 5: find the victim's pid by its http port.
vport=$(curl -s 127.0.0.1:1808$ask/api/v1/stores | /usr/bin/python3 -c '
import json, sys
for s in json.load(sys.stdin)["stores"]:
    if int(s["meta"]["id"]) == int(sys.argv[1]): print(s["meta"]["httpAddr"].split(":")[1])
' "$victim")
vi=${vport: -1}
echo "killing store $victim (node process $vi)"
kill -9 ${pid[$vi]}
unset "pid[$vi]"
killed=$(date +%s)
while true; do
  now=$(view $ask $victim)
  el=$(($(date +%s) - killed))
  bad=$(echo "$now" | cut -d' ' -f2)
  echo "${el}s after the kill: regions, unhealthy, replicas per store: $now"
  [ "$bad" = 0 ] && { echo "re-replicated ${el}s after the kill (store-down-time $DOWN)"; break; }
  [ $el -ge 900 ] && { echo "not re-replicated after ${el}s"; break; }
  sleep 5
done
# Every snapshot sent since the kill, with its rate (the transport logs bytes and times).
grep -h "sent a snapshot" $D/n*.log | sed 's/^\([^ ]*\) .*region \([0-9]*\) .*(\([0-9]*\) bytes.*; \([0-9]*\) MiB.s in all)/\1 region \2: \3 bytes at \4 MiB\/s/' |
  sort | awk -v k="$(date -u -d @$killed +%Y-%m-%dT%H:%M:%S)" '$1 >= k' | tail -20
# Decommission the store with the most replicas now (not the one asking).
now=$(view $ask $victim)
target=$(echo "$now" | tr ' ' '\n' | grep : | grep -v "^$victim:" | sort -t: -k2 -n | tail -1 | cut -d: -f1)
echo "decommissioning store $target"
t0=$(date +%s)
$BIN node decommission --id $target --via 127.0.0.1:2116$ask --wait 900 2>&1 | tail -3
echo "decommission of store $target took $(($(date +%s) - t0)) s"
