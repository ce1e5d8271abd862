"""Client workloads for the fault tests: each runs a few client threads against random nodes
of a Cluster while a nemesis breaks things, records what it did, and after healing makes the
final reads its checker needs.

- register: GET / SET / compare-and-swap on a few keys at a time; every op is recorded with
  invoke and completion times (linearizability.Op) for the Wing-Gong-Lowe checker. A key is
  retired after `ops_per_key` operations so that every per-key history stays small enough to
  check in seconds; compare-and-swap is WATCH key / GET / MULTI / SET / EXEC.
- set: SET of distinct keys; after healing every acknowledged key must be there and nothing
  that was never attempted.
- counter: INCR of one key; after healing acknowledged <= value <= attempted.

Outcome rules, shared by all: an error or timeout after a request may have reached a node is
indeterminate ('info'), never a failure, because the write may have been applied; a request
that could not be sent at all (no connection) did not happen. A compare-and-swap whose EXEC
answers "watched key changed" definitely did not take effect ('fail').
"""
import random
import threading
import time

import redis

from linearizability import Op


def now():
    return time.monotonic()


class Conn:
    """One client's connection to one node; reconnects to a random node after any error."""

    def __init__(self, cluster, rng, timeout):
        self.cluster = cluster
        self.rng = rng
        self.timeout = timeout
        self.r = None
        self.node = None

    def get(self):
        """A connected client, or None when no node answered PING just now."""
        if self.r is not None:
            return self.r
        nodes = [n for n in list(self.cluster.nodes.values()) if n.alive()]
        self.rng.shuffle(nodes)
        for n in nodes[:2]:
            r = n.redis(socket_timeout=1.0, socket_connect_timeout=1.0)
            try:
                r.ping()
            except (redis.RedisError, OSError):
                r.close()
                continue
            r.close()
            self.r = n.redis(socket_timeout=self.timeout, socket_connect_timeout=1.0,
                             single_connection_client=True)
            self.node = n
            return self.r
        return None

    def drop(self):
        if self.r is not None:
            try:
                self.r.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
        self.r = None


class Workload:
    name = "?"

    def __init__(self, cluster, seed, clients, op_timeout=5.0, think=(0.0, 0.004)):
        self.cluster = cluster
        self.seed = seed
        self.nclients = clients
        self.op_timeout = op_timeout
        self.think = think
        self.stop_flag = threading.Event()
        self.threads = []
        self.lock = threading.Lock()
        self.errors = []  # unexpected exceptions in client threads (a harness bug)

    def start(self):
        for i in range(self.nclients):
            rng = random.Random(f"{self.seed}/{self.name}/{i}")
            t = threading.Thread(target=self._client, args=(i, rng), daemon=True,
                                 name=f"{self.name}-{i}")
            t.start()
            self.threads.append(t)

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=self.op_timeout + 30)

    def _client(self, i, rng):
        conn = Conn(self.cluster, rng, self.op_timeout)
        try:
            while not self.stop_flag.is_set():
                r = conn.get()
                if r is None:
                    time.sleep(0.1)
                    continue
                ok = self.step(i, rng, r)
                if not ok:
                    conn.drop()
                    time.sleep(0.05)
                elif self.think[1] > 0:
                    time.sleep(rng.uniform(*self.think))
        except Exception as e:  # noqa: BLE001 - reported as a harness failure
            with self.lock:
                self.errors.append(f"{threading.current_thread().name}: {e!r}")
        finally:
            conn.drop()

    def step(self, i, rng, r):
        raise NotImplementedError


class RegisterWorkload(Workload):
    name = "register"

    def __init__(self, cluster, seed, clients=5, active_keys=3, ops_per_key=250, **kw):
        super().__init__(cluster, seed, clients, **kw)
        self.prefix = f"reg:{seed}:"
        self.active_keys = active_keys
        self.ops_per_key = ops_per_key
        self.history = []
        self.key_ops = {}
        self.next_key = 0
        self.active = []
        self.next_value = 1
        self.last_seen = {}  # (client, key) -> value it last read or wrote

    def _pick_key(self, rng):
        with self.lock:
            while len(self.active) < self.active_keys:
                k = f"{self.prefix}{self.next_key}"
                self.next_key += 1
                self.active.append(k)
                self.key_ops[k] = 0
            k = rng.choice(self.active)
            self.key_ops[k] += 1
            if self.key_ops[k] >= self.ops_per_key:
                self.active.remove(k)
            return k

    def _unique(self):
        with self.lock:
            v = self.next_value
            self.next_value += 1
            return v

    def _record(self, op):
        with self.lock:
            self.history.append(op)

    def step(self, i, rng, r):
        key = self._pick_key(rng)
        x = rng.random()
        if x < 0.5:
            return self._read(i, r, key)
        if x < 0.75:
            return self._write(i, r, key, self._unique())
        return self._cas(i, r, key, self.last_seen.get((i, key)), self._unique())

    def _read(self, i, r, key):
        op = Op(i, "read", key, None, now(), None, "info")
        try:
            v = r.get(key)
        except (redis.RedisError, OSError):
            self._record(op)  # an unanswered read constrains nothing; kept for the record
            return False
        op.complete, op.status = now(), "ok"
        op.output = None if v is None else int(v)
        self.last_seen[(i, key)] = op.output
        self._record(op)
        return True

    def _write(self, i, r, key, value):
        op = Op(i, "write", key, value, now(), None, "info")
        try:
            r.set(key, value)
        except (redis.RedisError, OSError):
            self._record(op)  # may or may not have been applied
            return False
        op.complete, op.status = now(), "ok"
        self.last_seen[(i, key)] = value
        self._record(op)
        return True

    def _cas(self, i, r, key, expected, new):
        # Raw commands on the client's single connection: redis-py's pipeline turns a lost
        # connection during a watched transaction into WatchError, which would make an
        # indeterminate EXEC look like a refused one.
        invoke = now()
        try:
            r.execute_command("WATCH", key)
            cur = r.execute_command("GET", key)
            cur = None if cur is None else int(cur)
        except (redis.RedisError, OSError):
            return False  # nothing was written yet: the op did not happen
        if cur != expected or expected is None:
            # The compare fails: what we saw is a read inside this op's interval.
            try:
                r.execute_command("UNWATCH")
            except (redis.RedisError, OSError):
                return False
            self.last_seen[(i, key)] = cur
            self._record(Op(i, "read", key, None, invoke, now(), "ok", cur))
            return True
        op = Op(i, "cas", key, (expected, new), invoke, None, "info")
        try:
            r.execute_command("MULTI")
            r.execute_command("SET", key, new)
            reply = r.execute_command("EXEC")
        except (redis.RedisError, OSError):
            self._record(op)  # EXEC may or may not have been applied
            return False
        op.complete = now()
        if reply is None:
            op.status = "fail"  # EXEC answered: a watched key changed, nothing applied
            self._record(op)
            return True
        if not (isinstance(reply, list) and len(reply) == 1 and reply[0] in (b"OK", True)):
            self._record(op)  # unexpected reply: count it as indeterminate and move on
            return False
        op.status, op.output = "ok", True
        self.last_seen[(i, key)] = new
        self._record(op)
        return True

    def final_reads(self, node):
        """After healing: one linearizable read of every key used, appended to the history."""
        r = node.redis(socket_timeout=15)
        for k in sorted(self.key_ops):
            op = Op(-1, "read", k, None, now(), None, "info")
            v = r.get(k)
            op.complete, op.status, op.output = now(), "ok", None if v is None else int(v)
            self.history.append(op)


class SetWorkload(Workload):
    name = "set"

    def __init__(self, cluster, seed, clients=2, **kw):
        super().__init__(cluster, seed, clients, **kw)
        self.prefix = f"set:{seed}:"
        self.next = 0
        self.adds = []  # Op per SET, value = the element

    def step(self, i, rng, r):
        with self.lock:
            e = self.next
            self.next += 1
            op = Op(i, "add", self.prefix, e, now(), None, "info")
            self.adds.append(op)
        try:
            r.set(f"{self.prefix}{e}", "1")
        except (redis.RedisError, OSError):
            return False
        op.complete, op.status = now(), "ok"
        return True

    def final_read(self, node):
        r = node.redis(socket_timeout=30)
        keys = r.keys(f"{self.prefix}*")
        return {int(k.decode()[len(self.prefix):]) for k in keys}


class CounterWorkload(Workload):
    name = "counter"

    def __init__(self, cluster, seed, clients=2, **kw):
        super().__init__(cluster, seed, clients, **kw)
        self.key = f"ctr:{seed}"
        self.attempted = 0
        self.acked = 0

    def step(self, i, rng, r):
        with self.lock:
            self.attempted += 1
        try:
            r.incr(self.key)
        except (redis.RedisError, OSError):
            return False
        with self.lock:
            self.acked += 1
        return True

    def final_read(self, node):
        v = node.redis(socket_timeout=30).get(self.key)
        return 0 if v is None else int(v)
