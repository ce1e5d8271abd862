"""The TSO checker finds what it must (each kind of violation) and passes a good history."""
from tso_checker import Call, check


def good():
    return [Call("a", 0.0, 0.1, 10), Call("b", 0.05, 0.2, 11), Call("a", 0.2, 0.3, 12),
            Call("b", 0.25, 0.4, 15), Call("a", 0.5, 0.6, None), Call("a", 1.0, 1.1, 20)]


def test_a_good_history_passes():
    assert check(good(), faults=[0.45]) == []


def test_a_timestamp_handed_out_twice_is_found():
    calls = good() + [Call("c", 2.0, 2.1, 12)]
    assert any("twice" in p for p in check(calls))


def test_a_caller_going_back_is_found():
    calls = [Call("a", 0.0, 0.1, 10), Call("a", 0.2, 0.3, 9)]
    problems = check(calls)
    assert any("not above its previous" in p for p in problems), problems


def test_real_time_order_across_callers_is_checked():
    # b's call began after a's had returned 50, yet b got 40: a stale leader answered b.
    calls = [Call("a", 0.0, 0.1, 50), Call("b", 0.2, 0.3, 40)]
    problems = check(calls)
    assert any("after a had got the larger 50" in p for p in problems), problems
    # Overlapping calls may come back in either order.
    assert check([Call("a", 0.0, 0.5, 50), Call("b", 0.1, 0.3, 40)]) == []


def test_a_service_gap_after_a_fault_is_found():
    calls = [Call("a", 0.0, 0.1, 1), Call("a", 4.0, 4.2, 2)]
    problems = check(calls, faults=[1.0], max_gap=3.0)
    assert any("no timestamp within 3.0s" in p for p in problems), problems
    assert check(calls, faults=[1.5], max_gap=3.0) == []
    assert check([Call("a", 0.0, 0.1, 1)], faults=[1.0]) != []
