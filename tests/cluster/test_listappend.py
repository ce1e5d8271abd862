"""Self-tests for the list-append isolation checker in listappend.py (no cluster needed).

Hand-written histories plant each anomaly the checker must report (and the look-alikes it
must accept); a generated serial history of 2,000 transactions must be judged valid quickly,
and invalid once one read is made stale.  (Kept as a .draft so the suite does not collect it
yet; rename to test_listappend.py to enable.)"""
import random
import time

import pytest

from listappend import check, txn

SI, SER, STRICT = "snapshot-isolation", "serializable", "strict-serializable"


def A(k, v):
    return ("append", k, v)


def R(k, vals):
    return ("r", k, vals)


def only(result, kind):
    """The single anomaly of `kind` in result (fails if there is not exactly one)."""
    found = result.of_type(kind)
    assert len(found) == 1, result.report()
    return found[0]


def assert_cycle(anomaly, ids, n_rw=None):
    """The anomaly's cycle is closed and visits exactly the transactions `ids`."""
    cycle, edges = anomaly["cycle"], anomaly["edges"]
    assert cycle[0] == cycle[-1] and len(edges) == len(cycle) - 1
    assert sorted(cycle[:-1]) == sorted(ids), anomaly
    if n_rw is not None:
        assert edges.count("rw") == n_rw, anomaly


# --------------------------------------------------------------------------- valid histories

def serial_history():
    return [
        txn("T1", "ok", A("x", 1), A("y", 1)),
        txn("T2", "ok", R("x", [1]), A("x", 2), R("x", [1, 2])),
        txn("T3", "ok", R("x", [1, 2]), R("y", [1]), A("y", 3)),
        txn("T4", "fail", A("x", 99)),                      # aborted and never seen: harmless
        txn("T5", "ok", R("x", [1, 2]), R("y", [1, 3]), R("z", None)),
    ]


@pytest.mark.parametrize("model", [SI, SER, STRICT])
def test_clean_serial_history_is_valid(model):
    res = check(serial_history(), model=model)
    assert res.valid is True, res.report()
    assert res.anomalies == []
    assert res.stats["committed"] == 4
    # ww T1->T2 (x), T1->T3 (y); wr edges into T2, T3, T5; T2 -rw-> nothing: it saw the tip.
    assert res.stats["edges"]["ww"] == 2


def test_unknown_model_and_bad_input_raise():
    with pytest.raises(ValueError):
        check([], model="read-committed")
    with pytest.raises(ValueError):
        check([txn("T1", "ok", A("x", 1)), txn("T2", "ok", A("x", 1))])   # value not unique
    with pytest.raises(ValueError):
        check([txn("T1", "maybe", A("x", 1))])


# --------------------------------------------------------------------------- planted anomalies

def test_g0_write_cycle():
    h = [txn("T1", "ok", A("x", 1), A("y", 1)),
         txn("T2", "ok", A("x", 2), A("y", 2)),
         txn("T3", "ok", R("x", [1, 2]), R("y", [2, 1]))]
    res = check(h)
    assert res.valid is False
    a = only(res, "G0")
    assert_cycle(a, ["T1", "T2"], n_rw=0)
    assert set(a["edges"]) == {"ww"}
    assert {s["key"] for s in a["steps"]} == {"x", "y"}


def test_g1a_aborted_read():
    h = [txn("T1", "fail", A("x", 1)),
         txn("T2", "ok", R("x", [1]))]
    res = check(h)
    assert res.valid is False
    a = only(res, "G1a")
    assert a["txns"] == ["T2", "T1"]
    assert ("T2", ("r", "x", [1])) in a["ops"] and ("T1", ("append", "x", 1)) in a["ops"]


def test_g1b_intermediate_read():
    h = [txn("T1", "ok", A("x", 1), A("x", 2)),
         txn("T2", "ok", R("x", [1])),
         txn("T3", "ok", R("x", [1, 2]))]
    res = check(h)
    assert res.valid is False
    a = only(res, "G1b")
    assert set(a["txns"]) == {"T1", "T2"}
    assert ("T2", ("r", "x", [1])) in a["ops"]
    # Reading the final state of T1 is fine: T3 is not blamed.
    assert all("T3" not in x["txns"] for x in res.anomalies)


def test_g1c_circular_information_flow():
    h = [txn("T1", "ok", A("x", 1), R("y", [2])),
         txn("T2", "ok", A("y", 2), R("x", [1]))]
    res = check(h)
    assert res.valid is False
    a = only(res, "G1c")
    assert_cycle(a, ["T1", "T2"], n_rw=0)
    assert a["edges"] == ["wr", "wr"]


def test_g_single_read_skew():
    # T2 sees T1's append to y but not its append to x.
    h = [txn("T1", "ok", A("x", 1), A("y", 1)),
         txn("T2", "ok", R("x", []), R("y", [1])),
         txn("T3", "ok", R("x", [1]))]
    for model in (SI, SER):
        res = check(h, model=model)
        assert res.valid is False
        a = only(res, "G-single")
        assert_cycle(a, ["T1", "T2"], n_rw=1)
        assert sorted(a["edges"]) == ["rw", "wr"]
        assert res.of_type("G2") == []


def test_g_single_preferred_over_g2_in_the_same_component():
    # T1, T2 form a write skew (two rw edges), and T3 adds a read skew with T1 in the same
    # component: the component must be reported as G-single, the cycle with fewest rw edges.
    h = [txn("T1", "ok", R("x", []), R("y", []), A("x", 1), A("z", 1)),
         txn("T2", "ok", R("x", []), R("y", []), A("y", 2)),
         txn("T3", "ok", R("z", [1]), R("x", [])),
         txn("T4", "ok", R("x", [1]), R("y", [2]))]
    res = check(h)
    assert res.valid is False
    a = only(res, "G-single")
    assert a["edges"].count("rw") == 1 and "T1" in a["txns"]


def test_lost_update():
    h = [txn("T1", "ok", R("x", [0]), A("x", 1)),
         txn("T2", "ok", R("x", [0]), A("x", 2)),
         txn("T0", "ok", A("x", 0)),
         txn("T3", "ok", R("x", [0, 1, 2]))]
    res = check(h)
    assert res.valid is False
    a = only(res, "lost-update")
    assert sorted(a["txns"]) == ["T1", "T2"]
    assert ("T1", ("append", "x", 1)) in a["ops"] and ("T2", ("r", "x", [0])) in a["ops"]
    # The same pattern is a read-skew cycle: T2 -rw-> T1 -ww-> T2.
    assert_cycle(only(res, "G-single"), ["T1", "T2"], n_rw=1)


def test_duplicate_elements():
    h = [txn("T1", "ok", A("x", 1)),
         txn("T2", "ok", R("x", [1, 1]))]
    res = check(h)
    assert res.valid is False
    a = only(res, "duplicate-elements")
    assert a["txns"] == ["T2"] and a["ops"] == [("T2", ("r", "x", [1, 1]))]


def test_incompatible_order():
    h = [txn("T1", "ok", A("x", 1)),
         txn("T2", "ok", A("x", 2)),
         txn("T3", "ok", R("x", [1, 2])),
         txn("T4", "ok", R("x", [2]))]
    res = check(h)
    assert res.valid is False
    a = only(res, "incompatible-order")
    assert sorted(a["txns"]) == ["T3", "T4"]
    assert ("T4", ("r", "x", [2])) in a["ops"] and ("T3", ("r", "x", [1, 2])) in a["ops"]


def test_internal_inconsistency():
    h = [txn("T1", "ok", A("x", 1), R("x", [])),                    # misses its own append
         txn("T2", "ok", R("y", [5]), A("y", 6), R("y", [5])),       # same
         txn("T3", "ok", R("z", [7]), A("z", 7)),                    # sees its later append
         txn("T4", "ok", A("y", 5)),
         txn("T5", "ok", R("w", [8]), R("w", [])),                   # non-repeatable read
         txn("T6", "ok", A("w", 8)),
         txn("T7", "ok", R("y", [5]), A("y", 9), R("y", [5, 9]))]    # fine
    res = check(h)
    assert res.valid is False
    internal = res.of_type("internal")
    assert sorted(a["txns"][0] for a in internal) == ["T1", "T2", "T3", "T5"]
    t1 = next(a for a in internal if a["txns"] == ["T1"])
    assert t1["ops"] == [("T1", ("append", "x", 1)), ("T1", ("r", "x", []))]


def test_garbage_read():
    res = check([txn("T1", "ok", R("x", [42]))])
    assert res.valid is False
    assert only(res, "garbage-read")["txns"] == ["T1"]


# --------------------------------------------------------------------------- write skew

def write_skew():
    return [txn("T1", "ok", R("x", []), R("y", []), A("x", 1)),
            txn("T2", "ok", R("x", []), R("y", []), A("y", 2)),
            txn("T3", "ok", R("x", [1]), R("y", [2]))]


def test_write_skew_is_g2_allowed_under_si():
    res = check(write_skew(), model=SI)
    assert res.valid is True, res.report()
    a = only(res, "G2")
    assert a["violation"] is False
    assert_cycle(a, ["T1", "T2"], n_rw=2)
    assert res.counts == {"G2": 1}


def test_write_skew_is_a_violation_when_serializable():
    res = check(write_skew(), model=SER)
    assert res.valid is False
    assert only(res, "G2")["violation"] is True


# --------------------------------------------------------------------------- info transactions

def test_observed_info_txn_counts_as_committed():
    # The info txn T1 was seen by T3, so it is committed: no G1a, and T2's read skew with it
    # is a cycle.
    h = [txn("T1", "info", A("x", 1), A("y", 1)),
         txn("T2", "ok", R("x", []), R("y", [1])),
         txn("T3", "ok", R("x", [1]))]
    res = check(h)
    assert res.of_type("G1a") == []
    assert res.stats["info_committed"] == 1 and res.stats["info_ignored"] == 0
    assert_cycle(only(res, "G-single"), ["T1", "T2"], n_rw=1)


def test_unobserved_info_txn_is_ignored():
    h = [txn("T1", "ok", A("x", 1)),
         txn("T2", "info", A("x", 2), R("x", [7, 7])),    # reads of an info txn: no answer
         txn("T3", "ok", R("x", [1]))]
    res = check(h)
    assert res.valid is True and res.anomalies == [], res.report()
    assert res.stats["info_ignored"] == 1 and res.stats["committed"] == 2


# --------------------------------------------------------------------------- real time

def test_stale_read_only_violates_realtime_models():
    # T2 starts after T1 committed but does not see it: fine under SI and serializability
    # (T2 may be ordered first), not under strict serializability or strong SI.
    h = [txn("T1", "ok", A("x", 1), invoke=0.0, complete=1.0),
         txn("T2", "ok", R("x", []), invoke=2.0, complete=3.0),
         txn("T3", "ok", R("x", [1]), invoke=4.0, complete=5.0)]
    assert check(h, model=SI).valid is True
    assert check(h, model=SER).valid is True
    for res in (check(h, model=STRICT), check(h, model=SI, realtime=True)):
        assert res.valid is False
        a = only(res, "G-single-realtime")
        assert_cycle(a, ["T1", "T2"], n_rw=1)
        assert "realtime" in a["edges"]


def test_overlapping_txns_get_no_realtime_edge():
    h = [txn("T1", "ok", A("x", 1), invoke=0.0, complete=2.0),
         txn("T2", "ok", R("x", []), invoke=2.0, complete=3.0),     # touching: concurrent
         txn("T3", "ok", R("x", [1]), invoke=4.0, complete=5.0)]
    assert check(h, model=STRICT).valid is True


def test_process_order_without_times():
    h = [txn("T1", "ok", A("x", 1), process=7),
         txn("T2", "ok", R("x", []), process=7),
         txn("T3", "ok", R("x", [1]), process=8)]
    assert check(h, model=SER).valid is True
    res = check(h, model=STRICT)
    assert res.valid is False
    assert "process" in only(res, "G-single-realtime")["edges"]


# --------------------------------------------------------------------------- generated histories

def generate_serial(n=2000, keys=20, seed=7, stale_at=None):
    """Transactions run one at a time against a model database.  With `stale_at`, a txn W at
    that position appends to x and y, and the next txn reads y with W's append but x without
    it: a read-skew (G-single) bug."""
    rng = random.Random(seed)
    db = {f"k{i}": [] for i in range(keys)}
    counter, history, t = 0, [], 0.0
    for n_txn in range(n):
        ops = []
        status = rng.choices(["ok", "fail", "info"], [0.9, 0.05, 0.05])[0]
        applied = status == "ok" or (status == "info" and rng.random() < 0.5)
        staged = {k: list(v) for k, v in db.items()}
        for _ in range(rng.randint(1, 5)):
            k = f"k{rng.randrange(keys)}"
            if rng.random() < 0.5:
                counter += 1
                staged[k].append(counter)
                ops.append(A(k, counter))
            else:
                ops.append(R(k, list(staged[k]) if status == "ok" else None))
        if stale_at is not None and n_txn == stale_at:
            ops, status, applied = [A("k0", -1), A("k1", -1)], "ok", True
            staged = {k: v + [-1] if k in ("k0", "k1") else list(v) for k, v in db.items()}
        if stale_at is not None and n_txn == stale_at + 1:
            ops = [R("k0", db["k0"][:-1]), R("k1", list(db["k1"]))]   # the bug: x is stale
            status, applied = "ok", False
        if applied:
            db = staged
        history.append(txn(f"T{n_txn}", status, *ops, process=n_txn % 10,
                           invoke=t, complete=t + 0.5))
        t += 1.0
    # A final read of every key, so every committed append lands in a version order.
    history.append(txn("final", "ok", *[R(k, list(v)) for k, v in db.items()],
                       invoke=t, complete=t + 0.5))
    return history


def test_generated_serial_history_is_valid_and_fast():
    h = generate_serial()
    for model in (SI, SER, STRICT):
        start = time.monotonic()
        res = check(h, model=model)
        elapsed = time.monotonic() - start
        assert res.valid is True, res.report()
        assert res.anomalies == []
        assert elapsed < 2.0, f"{model}: {elapsed:.2f}s"
    assert res.stats["committed"] > 1800
    assert res.stats["edges"]["ww"] > 1000 and res.stats["edges"]["rw"] > 1000


def test_generated_history_with_injected_stale_read_is_caught():
    h = generate_serial(stale_at=1000)
    start = time.monotonic()
    res = check(h, model=SI)
    assert time.monotonic() - start < 2.0
    assert res.valid is False
    a = only(res, "G-single")
    assert_cycle(a, ["T1000", "T1001"], n_rw=1)
    assert res.counts == {"G-single": 1}, res.report()
