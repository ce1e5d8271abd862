"""Unit tests for the history checkers in linearizability.py (no cluster needed).

Hand-written histories cover each anomaly the register checker must catch (and the
look-alikes it must accept); a brute-force checker cross-checks the search on many small
random histories; a simulated 10-client register gives a realistic large history that must
be judged valid quickly, and invalid once one read is made stale."""
import dataclasses
import random

import pytest

from linearizability import (Op, check_counter, check_register, check_set, format_report,
                             load_history, save_history)


def W(p, v, t0, t1, status="ok", key="k"):
    return Op(p, "write", key, v, t0, t1, status)


def R(p, out, t0, t1, status="ok", key="k"):
    return Op(p, "read", key, None, t0, t1, status, out)


def CAS(p, exp, new, t0, t1, swapped, status="ok", key="k"):
    return Op(p, "cas", key, (exp, new), t0, t1, status, swapped)


def only_key(result):
    assert len(result.per_key) == 1
    return next(iter(result.per_key.values()))


# --------------------------------------------------------------------------- small histories

def test_valid_sequential_history():
    h = [R(0, None, 0, 1), W(0, 1, 2, 3), R(1, 1, 4, 5), CAS(2, 1, 2, 6, 7, True),
         CAS(0, 1, 3, 8, 9, False), R(1, 2, 10, 11), W(2, 4, 12, 13), R(0, 4, 14, 15)]
    res = check_register(h)
    assert res.valid is True
    assert only_key(res).ops_checked == len(h)
    assert "VALID" in format_report(res)


def test_valid_concurrent_history_where_only_one_order_works():
    # Both writes overlap; the reads after them force the order "2 then 1", which is the
    # opposite of invocation order, so the search has to backtrack to find it.
    h = [W(0, 1, 0, 10), W(1, 2, 1, 9), R(2, 2, 2, 3), R(2, 1, 11, 12)]
    assert check_register(h).valid is True
    # ...and it is the only order: also demanding "1 then 2" makes it impossible.
    bad = h + [R(3, 2, 13, 14)]
    res = check_register(bad)
    assert res.valid is False
    assert only_key(res).offending[0] is bad[-1]


def test_stale_read_after_write_completed_is_invalid():
    h = [W(0, 1, 0, 1), W(1, 2, 2, 3), R(2, 1, 4, 5)]
    res = check_register(h)
    assert res.valid is False
    kr = only_key(res)
    assert kr.offending == [h[2]]
    assert "model state after it: 2" in kr.explanation


def test_stale_read_after_another_read_saw_the_new_value_is_invalid():
    # The second write is still in flight, but once one read has seen 2, a later read
    # cannot go back to 1.
    h = [W(0, 1, 0, 1), W(1, 2, 2, 20), R(2, 2, 3, 4), R(3, 1, 5, 6)]
    res = check_register(h)
    assert res.valid is False
    assert only_key(res).offending == [h[3]]
    # Without the first read, 1 is still a legal answer.
    assert check_register([h[0], h[1], h[3]]).valid is True


def test_lost_write_is_invalid():
    # Both writes acknowledged, then a read returns the older value: write 2 was lost.
    h = [W(0, 1, 0, 1), W(0, 2, 2, 3), R(1, 1, 10, 11), R(1, 1, 12, 13)]
    res = check_register(h)
    assert res.valid is False
    assert only_key(res).offending == [h[2]]
    # An acknowledged write followed by a read of "absent" is also a lost write.
    res = check_register([W(0, 1, 0, 1), R(1, None, 2, 3)])
    assert res.valid is False


def test_read_of_a_value_never_written_is_invalid():
    h = [W(0, 1, 0, 1), R(1, 7, 0.5, 5), W(0, 2, 2, 3)]
    res = check_register(h)
    assert res.valid is False
    assert only_key(res).offending == [h[1]]


def test_cas_reporting_swap_when_value_could_not_match_is_invalid():
    h = [W(0, 1, 0, 1), CAS(1, 2, 3, 2, 3, True)]
    res = check_register(h)
    assert res.valid is False
    assert only_key(res).offending == [h[1]]
    # With a concurrent write of 2 the swap is possible.
    assert check_register(h + [W(2, 2, 1.5, 2.5)]).valid is True


def test_cas_reporting_compare_failure_when_value_must_have_matched_is_invalid():
    h = [W(0, 1, 0, 1), CAS(1, 1, 3, 2, 3, False)]
    res = check_register(h)
    assert res.valid is False
    assert only_key(res).offending == [h[1]]
    # A concurrent write of something else could explain the failed compare...
    assert check_register(h + [W(2, 5, 1.5, 2.5)]).valid is True
    # ...even an indeterminate one (so the failed compare must keep it in the search).
    assert check_register(h + [W(2, 5, 1.5, None, status="info")]).valid is True


def test_info_write_that_must_have_taken_effect_is_valid():
    h = [W(0, 1, 0, 1), W(1, 2, 2, None, status="info"), R(2, 2, 5, 6), R(2, 2, 7, 8)]
    assert check_register(h).valid is True
    # Once it has been seen it has taken effect: the earlier value cannot come back.
    res = check_register(h + [R(3, 1, 9, 10)])
    assert res.valid is False
    assert only_key(res).offending[0].output == 1


def test_info_write_that_timed_out_later_can_still_take_effect():
    # complete is set (the client gave up at t=3), but an info op may land at any time.
    h = [W(0, 1, 0, 1), W(1, 2, 2, 3, status="info"), R(2, 1, 5, 6), R(2, 2, 7, 8)]
    assert check_register(h).valid is True


def test_info_write_never_seen_is_valid():
    h = [W(0, 1, 0, 1), W(1, 2, 2, None, status="info"), R(2, 1, 5, 6), R(2, 1, 7, 8)]
    assert check_register(h).valid is True
    # Same with a failed compare in the history (which keeps the info write in the search).
    h2 = h + [CAS(3, 9, 4, 9, 10, False), R(2, 1, 11, 12)]
    assert check_register(h2).valid is True


def test_info_read_constrains_nothing():
    h = [W(0, 1, 0, 1), R(1, 42, 2, None, status="info"), R(2, 1, 3, 4)]
    assert check_register(h).valid is True


def test_info_writes_nobody_read_can_explain_failed_compares():
    # Each failed compare needs the value to differ from 1 while 1 is the last acknowledged
    # write: two timed-out writes can explain two such compares, one cannot.
    h = [W(0, 1, 0, 1), W(1, 5, 1.5, None, status="info"), CAS(2, 1, 9, 2, 3, False),
         W(0, 1, 4, 5), CAS(2, 1, 9, 6, 7, False)]
    assert check_register(h).valid is False
    assert check_register(h + [W(3, 6, 1.6, None, status="info")]).valid is True
    assert check_register(h + [W(3, 6, 6.5, None, status="info")]).valid is True
    # ...but not one sent after the compare had already returned.
    res = check_register(h + [W(3, 6, 7.5, None, status="info")])
    assert res.valid is False
    assert only_key(res).offending == [h[4]]


def test_identical_info_writes_each_count_once():
    h = [W(0, 1, 0, 1), W(1, 2, 1, None, status="info"), R(2, 2, 2, 3), W(0, 1, 4, 5),
         R(2, 2, 6, 7)]
    assert check_register(h).valid is False            # one write of 2 cannot be seen twice
    assert check_register(h + [W(3, 2, 1.5, None, status="info")]).valid is True
    assert check_register(h + [W(3, 2, 5.5, None, status="info")]).valid is True
    assert check_register(h + [W(3, 2, 7.5, None, status="info")]).valid is False


def test_info_op_cannot_take_effect_before_it_was_sent():
    h = [W(0, 1, 0, 1), R(1, 2, 2, 3), W(2, 2, 4, None, status="info")]
    res = check_register(h)
    assert res.valid is False
    assert only_key(res).offending == [h[1]]
    assert check_register([h[0], h[1], W(2, 2, 2.5, None, status="info")]).valid is True
    # Also when an earlier info op is a candidate at that point.
    h2 = h + [W(3, 1, 0.5, None, status="info"), R(4, 1, 1.5, 1.8)]
    assert check_register(h2).valid is False


def test_two_info_writes_needed_in_the_right_order():
    # Only order: info write 1, cas 1->2, info write 3, read 3.  A search that wrongly
    # reuses a failure of "info write 3, then cas..." for "info write 1, then cas..." (the
    # same ok ops and state, different info ops) would call this invalid.
    h = [W(1, 3, 4, None, status="info"), CAS(2, 1, 2, 6, 7, True),
         W(3, 1, 6, None, status="info"), R(4, 3, 9, 10)]
    assert check_register(h).valid is True
    assert check_register(h[1:]).valid is False
    assert check_register(h[:2] + h[3:]).valid is False


def test_ok_cas_without_output_is_treated_as_indeterminate():
    h = [W(0, 1, 0, 1), CAS(1, 1, 2, 2, 3, None)]
    assert check_register(h + [R(2, 2, 4, 5)]).valid is True
    assert check_register(h + [R(2, 1, 4, 5)]).valid is True
    assert check_register(h + [R(2, 3, 4, 5)]).valid is False


def test_failed_write_whose_value_is_read_is_invalid():
    h = [W(0, 1, 0, 1), W(1, 2, 2, 3, status="fail"), R(2, 2, 4, 5)]
    res = check_register(h)
    assert res.valid is False
    assert only_key(res).offending == [h[2]]
    # The failed write is dropped, not counted.
    assert only_key(res).ops_checked == 2


def test_multi_key_history_reports_the_bad_key():
    h = [W(0, 1, 0, 1, key="a"), R(1, 1, 2, 3, key="a"),
         W(0, 1, 0, 1, key="b"), W(1, 2, 2, 3, key="b"), R(2, 1, 4, 5, key="b"),
         W(2, "x", 0, 1, key="c"), R(0, "x", 1.5, 2, key="c")]
    res = check_register(h)
    assert res.valid is False
    assert res.invalid_keys == ["b"]
    assert res.per_key["a"].valid is True and res.per_key["c"].valid is True
    assert res.per_key["b"].offending == [h[4]]
    report = format_report(res)
    assert "problem keys: 'b' (INVALID)" in report
    assert report.index("key 'b'") < report.index("key 'a'")   # problems listed first


def test_budget_exhausted_is_unknown_never_valid():
    h = simulate_register(random.Random(3), n_ops=200, n_procs=8)
    res = check_register(h, max_steps=20)
    assert res.valid is None
    assert only_key(res).valid is None
    assert "UNKNOWN" in format_report(res)
    res = check_register(h, budget_s=0.0)
    assert res.valid is None
    res = check_register(h, max_configs=5)
    assert res.valid is None and "UNKNOWN" in only_key(res).explanation
    # An invalid key still makes the whole result invalid even if another is unknown.
    mixed = h + [W(0, 1, 0, 1, key="z"), R(1, 2, 2, 3, key="z")]
    res = check_register(mixed, max_steps=20)
    assert res.valid is False and res.invalid_keys == ["z"] and res.unknown_keys == ["k"]


def test_save_and_load_round_trip(tmp_path):
    h = [W(0, "a", 0.5, 1.25), CAS(1, "a", "b", 2, None, None, status="info"),
         R(2, "b", 3, 4), CAS(3, "b", "c", 5, 6, True), R(4, None, 0, 0.1, key="other")]
    path = tmp_path / "history.jsonl"
    save_history(path, h)
    assert len(path.read_text().splitlines()) == len(h)
    loaded = load_history(path)
    assert loaded == h
    assert isinstance(loaded[1].value, tuple)
    assert check_register(loaded).valid is True


# --------------------------------------------------------------------------- brute force

def _brute_force_valid(history):
    """Independent reference: try every real-time-respecting order (info ops optional)."""
    ops = [o for o in history
           if o.status != "fail" and not (o.f == "read" and o.status != "ok")]
    INF = float("inf")
    done_by = [INF if o.status != "ok" or o.complete is None else o.complete for o in ops]
    must = {i for i, o in enumerate(ops) if o.status == "ok" and o.complete is not None}

    def apply(o, s):
        if o.f == "read":
            return (o.output == s), s
        if o.f == "write":
            return True, o.value
        exp, new = o.value
        if o.status != "ok" or o.output is True:
            return (s == exp), new
        return (s != exp), s

    def search(remaining, s):
        if not (remaining & must):
            return True
        for i in remaining:
            if any(done_by[j] < ops[i].invoke for j in remaining if j != i):
                continue
            ok, s2 = apply(ops[i], s)
            if ok and search(remaining - {i}, s2):
                return True
        return False

    return search(frozenset(range(len(ops))), None)


def _random_small_history(rng):
    ops = []
    for p in range(rng.randint(1, 8)):
        t0 = rng.randint(0, 8)
        t1 = t0 + rng.randint(0, 4)
        status = rng.choice(["ok"] * 6 + ["info", "fail"])
        done = None if status == "info" and rng.random() < 0.5 else t1
        f = rng.choice(["read", "read", "write", "cas", "cas"])
        # Reads and compares look at fewer values than are written, so that some written
        # values are never observed (the UNOBSERVED reductions get exercised).
        seen_val = lambda: rng.choice([None, 1, 2, 3])
        new_val = lambda: rng.choice([1, 2, 3, 4, 5])
        if f == "read":
            ops.append(Op(p, f, "k", None, t0, done, status, seen_val()))
        elif f == "write":
            ops.append(Op(p, f, "k", new_val(), t0, done, status))
        else:
            out = rng.choice([True, False]) if status == "ok" else None
            ops.append(Op(p, f, "k", (seen_val(), new_val()), t0, done, status, out))
    return ops


def test_search_agrees_with_brute_force_on_small_random_histories():
    rng = random.Random(20240601)
    verdicts = {True: 0, False: 0}
    for _ in range(4000):
        h = _random_small_history(rng)
        expected = _brute_force_valid(h)
        got = check_register(h).valid
        assert got is expected, format_report(check_register(h)) + "\n" + "\n".join(map(str, h))
        verdicts[got] += 1
    # Both outcomes must be well represented for the comparison to mean anything.
    assert min(verdicts.values()) > 800, verdicts


# --------------------------------------------------------------------------- large histories

def simulate_register(rng, n_ops=500, n_procs=10, key="k", p_info=0.02, p_fail=0.02):
    """A real register under n_procs clients, each issuing one op at a time.

    Every op takes effect at a random instant inside its [invoke, complete] window, so the
    history is linearizable by construction.  Written values are unique.  A few ops are
    indeterminate (taking effect or not, at any instant after invoke; the client then
    reconnects as a new process) and a few fail without effect."""
    clocks = [rng.uniform(0, 1) for _ in range(n_procs)]
    pids = list(range(n_procs))
    pending = []
    for _ in range(n_ops):
        c = rng.randrange(n_procs)
        invoke = clocks[c] + rng.uniform(0, 0.3)
        complete = invoke + rng.uniform(0.1, 3.0)
        clocks[c] = complete
        status = "ok"
        r = rng.random()
        if r < p_info:
            status = "info"
        elif r < p_info + p_fail:
            status = "fail"
        f = rng.choice(["read", "read", "write", "cas"])
        if status == "info":
            lands = rng.random() < 0.5
            at = invoke + rng.uniform(0, 10.0) if lands else None
        else:
            at = rng.uniform(invoke, complete) if status == "ok" else None
        op = Op(pids[c], f, key, None, invoke, complete if status != "info" else None, status)
        if status == "info":
            pids[c] += n_procs          # the client gives up on the connection
        pending.append((at, op))

    value, written, counter = None, [], 0
    for at, op in sorted(pending, key=lambda x: (x[0] is None, x[0] or 0)):
        if op.f == "write":
            counter += 1
            op.value = counter
        elif op.f == "cas":
            counter += 1
            exp = value if rng.random() < 0.5 or not written else rng.choice(written[-5:])
            op.value = (exp, counter)
        if at is None:
            continue                     # never took effect
        if op.f == "read":
            op.output = value if op.status == "ok" else None
        elif op.f == "write":
            value = op.value
            written.append(value)
        else:
            exp, new = op.value
            swapped = value == exp
            if swapped:
                value = new
                written.append(value)
            if op.status == "ok":
                op.output = swapped
    return sorted((op for _, op in pending), key=lambda o: o.invoke)


def make_one_read_stale(history, rng):
    """Copy of history where one read in the middle returns a value overwritten (by an
    acknowledged write) before the read started: impossible since written values are unique."""
    ok_writes = [o for o in history if o.f == "write" and o.status == "ok"]
    reads = [i for i, o in enumerate(history) if o.f == "read" and o.status == "ok"]
    rng.shuffle(reads)
    for i in reads:
        rd = history[i]
        if rd.invoke < history[len(history) // 3].invoke:
            continue
        for w1 in ok_writes:
            if w1.value == rd.output:
                continue
            if any(w1.complete < w2.invoke and w2.complete < rd.invoke for w2 in ok_writes):
                mutated = list(history)
                mutated[i] = dataclasses.replace(rd, output=w1.value)
                return mutated, mutated[i]
    raise AssertionError("no read to mutate")


@pytest.fixture(scope="module", params=[0.02, 0.10], ids=["2pct-info", "10pct-info"])
def big_history(request):
    rng = random.Random(7)
    h = []
    for key in ("x", "y"):
        h += simulate_register(rng, n_ops=500, n_procs=10, key=key, p_info=request.param)
    return h


def test_simulated_history_is_realistic(big_history):
    xs = [o for o in big_history if o.key == "x"]
    assert len(xs) == 500
    assert sum(o.status == "info" for o in xs) >= 3
    assert sum(o.f == "cas" and o.output is True for o in xs) >= 10
    assert sum(o.f == "cas" and o.output is False for o in xs) >= 10
    # Real concurrency: the peak number of ops in flight at once is near the client count.
    events = sorted([(o.invoke, 1) for o in xs] + [(o.complete, -1) for o in xs
                                                    if o.complete is not None])
    level = peak = 0
    for _, d in events:
        level += d
        peak = max(peak, level)
    assert peak >= 8


# "Quickly" is counted in search steps, not seconds (the machine may be slow and shared): these
# histories take at most ~250,000 steps a key; a step budget of 1,000,000 keeps a 4x margin,
# and the time budget only stops a runaway search.
STEP_BUDGET = 1_000_000


def test_large_valid_history_is_valid_quickly(big_history):
    res = check_register(big_history, budget_s=600, max_steps=STEP_BUDGET)
    assert res.valid is True, format_report(res)
    assert set(res.per_key) == {"x", "y"}


def test_large_history_with_one_stale_read_is_invalid(big_history):
    mutated, stale = make_one_read_stale(big_history, random.Random(11))
    res = check_register(mutated, budget_s=600, max_steps=STEP_BUDGET)
    assert res.valid is False, format_report(res)
    assert res.invalid_keys == [stale.key]
    assert res.per_key[stale.key].offending == [stale], format_report(res)


# --------------------------------------------------------------------------- set, counter

def ADD(p, v, status="ok"):
    return Op(p, "add", "s", v, 0, 1 if status != "info" else None, status)


def test_set_with_every_acknowledged_element_is_valid():
    adds = [ADD(0, 1), ADD(1, 2), ADD(2, 3, "info"), ADD(0, 4, "info"), ADD(1, 5, "fail")]
    res = check_set(adds, {1, 2, 3})
    assert res.valid is True
    kr = only_key(res)
    assert kr.details["lost"] == [] and kr.details["indeterminate_present"] == 1


def test_set_lost_element_is_reported():
    adds = [ADD(0, 1), ADD(1, 2), ADD(2, 3)]
    res = check_set(adds, {1, 3})
    assert res.valid is False
    kr = only_key(res)
    assert kr.details["lost"] == [2]
    assert kr.offending == [adds[1]]
    assert "lost" in format_report(res) and "2" in kr.explanation


def test_set_phantom_element_is_reported():
    adds = [ADD(0, 1), ADD(1, 2)]
    res = check_set(adds, {1, 2, 99})
    assert res.valid is False
    assert only_key(res).details["phantom"] == [99]
    assert "phantom" in only_key(res).explanation


def test_set_element_whose_add_failed_is_reported():
    adds = [ADD(0, 1), ADD(1, 2, "fail")]
    res = check_set(adds, {1, 2})
    assert res.valid is False
    assert only_key(res).details["failed_present"] == [2]
    # A retry that succeeded (or may have) makes it legitimate.
    assert check_set(adds + [ADD(2, 2, "info")], {1, 2}).valid is True


def test_counter_within_bounds_is_valid():
    assert check_counter(5, 8, 5).valid is True
    assert check_counter(5, 8, 8).valid is True
    assert check_counter(0, 0, 0).valid is True


def test_counter_below_acknowledged_is_invalid():
    res = check_counter(5, 8, 4)
    assert res.valid is False
    assert "lost" in only_key(res).explanation


def test_counter_above_attempted_is_invalid():
    res = check_counter(5, 8, 9)
    assert res.valid is False
    assert "> 8 attempted" in format_report(res)
