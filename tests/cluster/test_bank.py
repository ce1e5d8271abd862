"""Self-tests for the bank-history checker in bank.py (no cluster needed).

Hand-written histories plant each anomaly the checker must report, next to look-alikes it
must accept (unknown-outcome transfers seen or not, aborted transfers never seen).  A history
of a few hundred random transfers, produced by a serial model database, must be judged valid;
the same history with one committed transfer dropped from the final read must not."""
import random
import time

import pytest

from bank import check, read, transfer

INIT = {"a": 10, "b": 10, "c": 10}


def only(result, kind):
    """The single anomaly of `kind` in result (fails if there is not exactly one)."""
    found = result.of_type(kind)
    assert len(found) == 1, result.report()
    return found[0]


def kinds(result):
    return set(result.counts)


# --------------------------------------------------------------------------- valid histories

def test_simple_valid_history():
    h = [read("R0", {"a": 10, "b": 10, "c": 10}, read_ts=1),
         transfer("T1", "ok", "a", "b", 4),
         transfer("T2", "fail", "c", "a", 50, reason="insufficient"),   # never seen: harmless
         read("R1", {"a": 6, "b": 14, "c": 10}, read_ts=2),
         read("R1b", {"a": 6, "b": 14, "c": 10}, read_ts=2),            # same snapshot, same data
         transfer("T3", "ok", "b", "c", 14),
         read("R2", {"a": 6, "b": 0, "c": 24}, read_ts=3),
         read("R3", None, status="info")]                               # no answer: ignored
    res = check(h, INIT, final={"a": 6, "b": 0, "c": 24})
    assert res.valid is True, res.report()
    assert res.anomalies == [] and res.counts == {}
    s = res.stats
    assert s["transfers"] == {"ok": 2, "fail": 1, "info": 0}
    assert s["reads"] == 5 and s["reads_ignored"] == 1        # 4 reads + the final one
    assert s["read_ts_shared"] == 1
    assert s["subset_checks"] == 15 and s["subset_skipped"] == 0
    assert s["final_checks"] == 3 and s["final_skipped"] == 0
    assert "valid" in res.report()


def test_reads_may_miss_ok_transfers_that_commit_later():
    # A snapshot may predate a committed transfer (no real-time claims are made).
    h = [transfer("T1", "ok", "a", "b", 4, invoke=0.0, complete=1.0),
         read("R1", {"a": 10, "b": 10, "c": 10}, invoke=2.0, complete=3.0)]
    assert check(h, INIT).valid is True


@pytest.mark.parametrize("applied", [True, False])
def test_info_transfer_seen_or_not(applied):
    a, b = (7, 13) if applied else (10, 10)
    h = [transfer("T1", "info", "a", "b", 3),
         read("R1", {"a": 10, "b": 10, "c": 10}),       # before it (or it never happened)
         read("R2", {"a": a, "b": b, "c": 10})]
    res = check(h, INIT, final=read("F", {"a": a, "b": b, "c": 10}))
    assert res.valid is True, res.report()
    assert res.stats["transfers"]["info"] == 1


def test_info_and_ok_mixed_final():
    h = [transfer("T1", "ok", "a", "b", 2),
         transfer("T2", "info", "b", "c", 5),
         transfer("T3", "info", "c", "a", 1)]
    # T1 applied (must be), T2 applied, T3 not.
    res = check(h, INIT, final={"a": 8, "b": 7, "c": 15})
    assert res.valid is True, res.report()


def test_plain_dicts_are_accepted():
    h = [{"type": "transfer", "id": 1, "status": "ok", "from": "a", "to": "b", "amount": 4,
          "process": 0, "invoke": 0.0, "complete": 1.0},
         {"type": "transfer", "id": 2, "status": "fail", "from": "b", "to": "a", "amount": 99,
          "reason": "insufficient"},
         {"type": "read", "id": 3, "status": "ok", "balances": {"a": 6, "b": 14, "c": 10},
          "read_ts": 17},
         {"id": 4, "status": "ok", "balances": {"a": 6, "b": 14, "c": 10}, "read_ts": 17}]
    final = {"type": "read", "id": 5, "status": "ok", "balances": {"a": 6, "b": 14, "c": 10}}
    res = check(h, INIT, final=final)
    assert res.valid is True, res.report()
    assert res.stats["reads"] == 3

    bad = h + [{"type": "read", "id": 6, "status": "ok", "balances": {"a": 5, "b": 14, "c": 10}}]
    res = check(bad, INIT)
    assert only(res, "wrong-total")["ops"] == [6]


def test_final_already_in_history_is_not_double_checked():
    f = read("F", {"a": 11, "b": 10, "c": 10})
    res = check([f], INIT, final=f)
    assert res.counts["wrong-total"] == 1, res.report()


def test_bad_input_raises():
    with pytest.raises(ValueError):
        check([], {})
    with pytest.raises(ValueError):
        check([], {"a": -1})
    with pytest.raises(ValueError):
        check([transfer("T1", "maybe", "a", "b", 1)], INIT)
    with pytest.raises(ValueError):
        check([transfer("T1", "ok", "a", "zz", 1)], INIT)         # unknown account
    with pytest.raises(ValueError):
        check([transfer("T1", "ok", "a", "b", 1.5)], INIT)
    with pytest.raises(ValueError):
        check([transfer("T1", "ok", "a", "b", 1), read("T1", INIT)], INIT)   # duplicate id
    with pytest.raises(ValueError):
        check([read("R1", {"a": "ten", "b": 10, "c": 10})], INIT)
    with pytest.raises(ValueError):
        check([], INIT, final=read("F", INIT, status="info"))


# --------------------------------------------------------------------------- planted anomalies

def test_money_created_is_wrong_total():
    h = [transfer("T1", "ok", "a", "b", 4),
         read("R1", {"a": 6, "b": 19, "c": 10})]
    res = check(h, INIT)
    assert res.valid is False
    a = only(res, "wrong-total")
    assert a["ops"] == ["R1"] and a["total"] == 35 and a["expected"] == 30
    assert "R1" in a["explanation"] and "35" in a["explanation"] and "30" in a["explanation"]
    assert "+5" in a["explanation"]


def test_negative_balance():
    h = [transfer("T1", "ok", "a", "b", 15),
         read("R1", {"a": -5, "b": 25, "c": 10})]
    res = check(h, INIT)
    assert res.valid is False
    a = only(res, "negative-balance")
    assert (a["read"], a["account"], a["balance"]) == ("R1", "a", -5)
    assert kinds(res) == {"negative-balance"}, res.report()      # total and sums are fine


def test_reading_a_failed_transfer_is_impossible_balance():
    # G1a-like: the read sees the write of a transfer reported as not committed.
    h = [transfer("T1", "ok", "a", "c", 1),
         transfer("T2", "fail", "a", "b", 4),
         read("R1", {"a": 5, "b": 14, "c": 11})]
    res = check(h, INIT)
    assert res.valid is False
    assert kinds(res) == {"impossible-balance"}, res.report()
    found = res.of_type("impossible-balance")
    assert {x["account"] for x in found} == {"a", "b"}
    for x in found:
        assert x["aborted"] == ["T2"] and "T2" in x["ops"], x
        assert "T2" in x["explanation"] and "fail" in x["explanation"]


def test_impossible_balance_without_aborted_explanation():
    h = [transfer("T1", "ok", "a", "b", 3),
         transfer("T2", "ok", "a", "c", 5),
         read("R1", {"a": 9, "b": 11, "c": 10})]     # total fine, but no transfer of 1 exists
    res = check(h, INIT)
    assert res.valid is False
    found = res.of_type("impossible-balance")
    assert {x["account"] for x in found} == {"a", "b"}, res.report()
    assert all(x["aborted"] == [] for x in found)
    assert "{2, 5, 7, 10}" in next(x for x in found if x["account"] == "a")["explanation"]


def test_torn_read_shows_as_wrong_total():
    # The read reflects T1 on a but not on b.
    h = [transfer("T1", "ok", "a", "b", 3),
         read("R1", {"a": 7, "b": 10, "c": 10})]
    res = check(h, INIT)
    assert res.valid is False
    assert only(res, "wrong-total")["total"] == 27
    assert res.counts == {"wrong-total": 1}, res.report()


def test_torn_read_of_info_transfer():
    h = [transfer("T1", "info", "a", "b", 3),
         read("R1", {"a": 10, "b": 13, "c": 10})]
    res = check(h, INIT)
    assert res.valid is False and res.counts == {"wrong-total": 1}, res.report()


def test_lost_ok_transfer_in_final_read():
    h = [transfer("T1", "ok", "a", "b", 4),
         transfer("T2", "ok", "b", "c", 2),
         transfer("T3", "info", "c", "a", 1),
         read("R1", {"a": 10, "b": 8, "c": 12})]     # fine mid-history: T1 not yet visible
    final = read("F", {"a": 10, "b": 8, "c": 12})    # but T1 must be in the end state
    res = check(h, INIT, final=final)
    assert res.valid is False
    assert kinds(res) == {"lost-transfer"}, res.report()
    found = res.of_type("lost-transfer")
    assert {x["account"] for x in found} == {"a", "b"}
    for x in found:
        assert x["lost"] == ["T1"] and x["ops"][0] == "F" and "T1" in x["ops"], x
        assert "T1" in x["explanation"]


def test_same_read_ts_different_balances():
    h = [transfer("T1", "ok", "a", "b", 4),
         read("R1", {"a": 10, "b": 10, "c": 10}, read_ts=5),
         read("R2", {"a": 6, "b": 14, "c": 10}, read_ts=5),
         read("R3", {"a": 6, "b": 14, "c": 10}, read_ts=6)]
    res = check(h, INIT)
    assert res.valid is False
    a = only(res, "non-monotonic-snapshot")
    assert a["ops"] == ["R1", "R2"] and a["read_ts"] == 5
    assert a["diff"] == {"a": (10, 6), "b": (10, 14)}
    assert res.counts == {"non-monotonic-snapshot": 1}, res.report()


def test_missing_and_unexpected_accounts():
    h = [read("R1", {"a": 10, "b": None, "c": 10}),
         read("R2", {"a": 20, "c": 10}),
         read("R3", {"a": 10, "b": 10, "c": 10, "zz": 0})]
    res = check(h, INIT)
    assert res.valid is False
    missing = res.of_type("missing-account")
    assert [(x["read"], x["accounts"]) for x in missing] == [("R1", ["b"]), ("R2", ["b"])]
    assert only(res, "unexpected-account")["accounts"] == ["zz"]
    assert only(res, "wrong-total")["read"] == "R1"       # R2 still sums to 30
    assert res.stats["reads"] == 3


def test_missing_account_in_final():
    res = check([], INIT, final={"a": 10, "b": 10})
    assert res.valid is False
    assert only(res, "missing-account")["accounts"] == ["c"]


def test_dense_accounts_are_skipped_not_reported():
    # 25 info transfers touch a and b: above max_subset, so no subset check (counted instead).
    h = [transfer(f"T{i}", "info", "a", "b", 1 + i % 3) for i in range(25)]
    h.append(read("R1", {"a": 3, "b": 17, "c": 10}))
    res = check(h, INIT, final={"a": 3, "b": 17, "c": 10})
    assert res.valid is True, res.report()
    assert res.stats["subset_skipped"] == 4 and res.stats["subset_skipped_accounts"] == 2
    assert res.stats["final_skipped"] == 2
    # Without the count limit, the (small) value sets make the check exact and cheap.
    res = check(h, INIT, final={"a": 3, "b": 17, "c": 10}, max_subset=None)
    assert res.valid is True and res.stats["subset_skipped"] == 0
    res = check(h, INIT, final={"a": 3, "b": 18, "c": 9}, max_subset=None)
    assert kinds(res) >= {"impossible-balance", "lost-transfer"}


def test_value_cap_skips():
    h = [transfer(f"T{i}", "info", "a", "b", 2 ** i) for i in range(10)]
    h.append(read("R1", {"a": 5, "b": 15, "c": 10}))
    res = check(h, INIT, max_values=100)
    assert res.valid is True and res.stats["subset_skipped"] == 2


# --------------------------------------------------------------------------- generated histories

def generate(n=200, accounts=30, seed=3, lose_at=None):
    """Transfers run one at a time on a model database; reads every few steps, sometimes two at
    the same read_ts.  With `lose_at`, the transfer at that position is 'ok' but the final read
    does not reflect it."""
    rng = random.Random(seed)
    initial = {f"acct{i}": rng.randint(5, 30) for i in range(accounts)}
    db, history, ts, t, lost = dict(initial), [], 0, 0.0, None
    names = list(initial)
    for i in range(n):
        src, dst = rng.sample(names, 2)
        amount = rng.randint(1, 8)
        status = rng.choices(["ok", "fail", "info"], [0.8, 0.1, 0.1])[0]
        reason = None
        if i == lose_at:
            src = max(names, key=db.get)
            dst = names[0] if src != names[0] else names[1]
            status, amount, lost = "ok", 3, (src, dst, 3)
        elif db[src] < amount:
            status, reason = "fail", "insufficient"
        if status == "ok" or (status == "info" and rng.random() < 0.5):
            db[src] -= amount
            db[dst] += amount
            ts += 1
        history.append(transfer(f"T{i}", status, src, dst, amount, reason=reason,
                                process=i % 5, invoke=t, complete=t + 0.5))
        t += 1.0
        if rng.random() < 0.25:
            for _ in range(rng.choice([1, 1, 2])):
                history.append(read(f"R{len(history)}", db, read_ts=ts, process=i % 5,
                                    invoke=t, complete=t + 0.5))
                t += 1.0
    final = dict(db)
    if lost:
        src, dst, amount = lost
        final[src] += amount
        final[dst] -= amount
    return history, initial, read("final", final, read_ts=ts + 1)


def test_generated_serial_history_is_valid_and_fast():
    h, initial, final = generate()
    start = time.monotonic()
    res = check(h, initial, final=final)
    unlimited = check(h, initial, final=final, max_subset=None)
    assert time.monotonic() - start < 1.0
    assert res.valid is True, res.report()
    assert unlimited.valid is True, unlimited.report()
    s = res.stats
    assert sum(s["transfers"].values()) == 200
    assert s["transfers"]["ok"] > 100 and s["transfers"]["fail"] > 0 and s["transfers"]["info"] > 0
    assert s["reads"] > 40 and s["read_ts_shared"] > 0
    assert s["subset_checks"] > 1000 and s["final_checks"] > 0
    assert unlimited.stats["subset_skipped"] == 0 and unlimited.stats["final_skipped"] == 0


def test_generated_history_with_lost_transfer_is_caught():
    h, initial, final = generate(lose_at=120)
    res = check(h, initial, final=final, max_subset=None)
    assert res.valid is False
    found = res.of_type("lost-transfer")
    assert len(found) == 2 and kinds(res) <= {"lost-transfer", "impossible-balance"}, res.report()
    assert all(len(x["lost"]) == 1 for x in found), res.report()
    assert "T120" in {t for x in found for t in x["lost"]}, res.report()
