#!/usr/bin/env bash
# By hand (issue 15's idle target: 3 stores with 1,000 regions each at most 3% of a core each
# when idle). Starts 3 release-build nodes on loopback, writes KEYS small keys, splits the
# keyspace into REGIONS regions with `micedb region split` (the split checker stays out of it:
# --region-split-size is 96MiB), waits until the coordinator has no operator left (leaders are
# spread by the balancer), then measures each node's CPU over IDLE_SECS of idleness.
# Usage: bench/idle_regions.sh [REGIONS] [KEYS]; HIBERNATE=false for the side-by-side run.
set -u
BIN=${MICEDB_BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/release/src/cli/micedb}
REGIONS=${1:-1000}
KEYS=${2:-20000}
HIBERNATE=${HIBERNATE:-true}
IDLE_SECS=${IDLE_SECS:-30}
D=$(mktemp -d /tmp/micedb-idle-regions.XXXXXX)
peers="1=127.0.0.1:21161,2=127.0.0.1:21162,3=127.0.0.1:21163"
pids=()
for i in 1 2 3; do
  $BIN start --node-id $i --data-dir $D/n$i --listen-peer 127.0.0.1:2116$i \
    --listen-redis 127.0.0.1:1638$i --listen-pg 127.0.0.1:1543$i \
    --listen-http 127.0.0.1:1808$i --initial-peers $peers --region-split-size 96MiB \
    --hibernate-regions $HIBERNATE --no-region-merge --log-level warn ${NODE_ARGS:-} > $D/n$i.log 2>&1 &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null; sleep 3; kill -9 "${pids[@]}" 2>/dev/null; rm -rf "$D"' EXIT
for t in $(seq 1 100); do redis-cli -p 16381 set ready 1 2>/dev/null | grep -q OK && break; sleep 0.2; done
redis-benchmark -p 16381 -t set -r $KEYS -n $((KEYS * 2)) -d 100 -c 20 -P 16 -q > /dev/null 2>&1
# redis-benchmark's keys are key:%012d; split at evenly spaced ones.
step=$((KEYS / REGIONS))
[ $step -lt 1 ] && step=1
made=0
for k in $(seq $step $step $((KEYS - 1))); do
  [ $made -ge $((REGIONS - 1)) ] && break
  key=$(printf 'key:%012d' $k)
  $BIN region split "$key" --via 127.0.0.1:21161 --timeout 30 > /dev/null 2>&1 && made=$((made + 1))
done
leaders() {
  for i in 1 2 3; do
    curl -s 127.0.0.1:1808$i/debug/raft | /usr/bin/python3 -c \
      'import json,sys; d=json.load(sys.stdin); print(sum(1 for r in d["regions"] if r["role"]=="leader"), end=" ")'
  done
}
ops() {
  curl -s 127.0.0.1:18081/api/v1/operators | /usr/bin/python3 -c \
    'import json,sys; d=json.load(sys.stdin); print(len(d.get("operators", [])))' 2>/dev/null || echo 1
}
# Settled: no operator under way and the leader counts unchanged for 20 s.
last=""; same=0
for t in $(seq 1 90); do
  now="$(leaders)$(ops)"
  if [ "$now" = "$last" ]; then same=$((same + 1)); else same=0; last=$now; fi
  [ $same -ge 4 ] && break
  sleep 5
done
sleep 5
asleep() {
  for i in 1 2 3; do
    curl -s 127.0.0.1:1808$i/metrics | awk '/^micedb_regions_asleep /{printf "%s ", $2}'
  done
}
echo "hibernate=$HIBERNATE: $made splits; leaders per node: $(leaders); asleep per node: $(asleep)"
cpu1() { awk '{print $14+$15}' /proc/$1/stat; }
declare -A b
for p in "${pids[@]}"; do b[$p]=$(cpu1 $p); done
sleep $IDLE_SECS
line=""
for p in "${pids[@]}"; do
  line="$line $(awk -v d=$(($(cpu1 $p) - ${b[$p]})) -v s=$IDLE_SECS 'BEGIN{printf "%.2f%%", d/s}')"
done
echo "hibernate=$HIBERNATE: idle CPU per node over $IDLE_SECS s (% of one core):$line"
if [ -n "${PROFILE:-}" ]; then
  # Where node 1's idle CPU goes (perf from Debian's linux-perf).
  perf record -F 999 -g -p ${pids[0]} -o $D/perf.data -- sleep 20 > /dev/null 2>&1
  perf report -i $D/perf.data --no-children --sort symbol --stdio 2>/dev/null |
    grep -E '^ +[0-9]' | cut -c1-150 | head -${PROFILE}
fi
if [ -n "${BENCH:-}" ]; then
  # Then the same keys under load at node 1 (compare REGIONS=1 against REGIONS=1000): requests
  # per second and the three nodes' CPU per request.
  cpu() { local s=0; for p in "${pids[@]}"; do s=$((s + $(cpu1 $p))); done; echo $s; }
  # The three nodes' work counters, summed: raft messages sent, socket writes, regions'
  # Readies, loop rounds, synced log writes, context switches (from /proc).
  work() {
    local m="" i p
    for i in 1 2 3; do m="$m$(curl -s 127.0.0.1:1808$i/metrics)"$'\n'; done
    local cs=0
    for p in "${pids[@]}"; do
      cs=$((cs + $(cat /proc/$p/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}')))
    done
    echo "$m" | awk -v cs=$cs '
      /^micedb_transport_messages_sent_total / {msg += $2}
      /^micedb_transport_socket_writes_total / {wr += $2}
      /^micedb_raft_readies_total / {rd += $2}
      /^micedb_raft_loop_rounds_total / {lr += $2}
      /^micedb_raft_sync_writes_total / {sy += $2}
      END {printf "%d %d %d %d %d %d", msg, wr, rd, lr, sy, cs}'
  }
  for t in set get; do
    # BENCH_PROFILE=N: node 1's top N symbols during the SET run.
    if [ -n "${BENCH_PROFILE:-}" ] && [ $t = set ]; then
      perf record -F 999 -g -p ${pids[0]} -o $D/perf-set.data -- sleep 15 > /dev/null 2>&1 &
      perf_pid=$!
    fi
    c0=$(cpu)
    w0=$(work)
    # One redis-benchmark per node (17 clients each, 51 in all), so that with one region as
    # with many two thirds of the requests are forwarded to a leader on another node: the
    # comparison is of the regions' cost, not of where the one leader happens to be.
    t0=$(date +%s.%N)
    rbs=()
    for i in 1 2 3; do
      redis-benchmark -p 1638$i -t $t -r $KEYS -n 34000 -d 100 -c 17 -q 2>/dev/null |
        tr '\r' '\n' | grep -i "requests per second" | tail -1 > $D/rb$i.out &
      rbs+=($!)
    done
    wait "${rbs[@]}"
    c1=$(cpu)
    w1=$(work)
    out=$(awk -v w="$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN{print a - b}')" '{s += $2} END {
      printf "%.0f requests per second (102,000 in %.1f s; the three runs %.0f together)", 102000 / w, w, s}' \
      $D/rb1.out $D/rb2.out $D/rb3.out)
    # A tick is 10 ms of CPU: 10,000 us over 102,000 requests.
    if [ -n "${BENCH_PROFILE:-}" ] && [ $t = set ]; then
      wait $perf_pid
      perf report -i $D/perf-set.data --no-children --sort symbol --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | cut -c1-120 | head -${BENCH_PROFILE}
    fi
    echo "regions=$REGIONS $t: $out; nodes' CPU $(awk -v d=$((c1 - c0)) 'BEGIN{printf "%.1f", d / 10.2}') us per request"
    echo "regions=$REGIONS $t: per request, the three nodes together: $(awk -v a="$w0" -v b="$w1" 'BEGIN {
      split(a, x, " "); split(b, y, " "); n = 102000
      printf "%.2f raft messages, %.2f socket writes, %.2f region Readies, %.3f loop rounds, %.3f log fsyncs, %.2f context switches",
        (y[1]-x[1])/n, (y[2]-x[2])/n, (y[3]-x[3])/n, (y[4]-x[4])/n, (y[5]-x[5])/n, (y[6]-x[6])/n}')"
  done
fi
if [ -n "${HOLD:-}" ]; then
  # HOLD=SECS: keep the cluster up that long for measurements by hand (redis ports 16381-3).
  echo "holding the cluster for $HOLD s: node pids ${pids[*]}"
  sleep "$HOLD"
fi
