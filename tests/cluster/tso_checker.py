"""Checks a history of timestamp-oracle calls (docs/coordinator.md): every timestamp handed out
once, each caller's rising, real-time order kept across callers (a call that ended before
another began got the smaller timestamp), and the service back soon after each fault."""
import bisect
from dataclasses import dataclass


@dataclass
class Call:
    caller: str
    start: float      # when the call was sent (seconds, one clock for the whole history)
    end: float        # when its answer came
    ts: int = None    # None: the call failed


def check(calls, faults=(), max_gap=3.0):
    """Returns the violations found, as sentences (empty: the history is fine). `faults` are the
    times at which the service was hurt (a leader killed or paused); within `max_gap` seconds of
    each, some call must have succeeded again."""
    problems = []
    ok = [c for c in calls if c.ts is not None]

    seen = {}
    for c in ok:
        if c.ts in seen:
            problems.append(f"timestamp {c.ts} handed out twice: to {seen[c.ts].caller} at "
                            f"{seen[c.ts].end:.3f} and to {c.caller} at {c.end:.3f}")
        else:
            seen[c.ts] = c

    by_caller = {}
    for c in sorted(ok, key=lambda c: c.start):
        prev = by_caller.get(c.caller)
        if prev is not None and c.ts <= prev.ts:
            problems.append(f"{c.caller}: timestamp {c.ts} at {c.start:.3f} is not above its "
                            f"previous {prev.ts}")
        by_caller[c.caller] = c

    # Real time: the largest timestamp among the calls that ended before a call began must be
    # below that call's.
    ended = sorted(ok, key=lambda c: c.end)
    ends = [c.end for c in ended]
    best = []  # prefix maxima of ts over `ended`
    for c in ended:
        best.append(c if not best or c.ts > best[-1].ts else best[-1])
    for c in ok:
        i = bisect.bisect_left(ends, c.start)
        if i > 0 and best[i - 1].ts >= c.ts:
            b = best[i - 1]
            problems.append(f"{c.caller} got {c.ts} at {c.start:.3f}, after {b.caller} had got "
                            f"the larger {b.ts} (answered at {b.end:.3f})")

    ok_ends = sorted(c.end for c in ok)
    for f in faults:
        i = bisect.bisect_right(ok_ends, f)
        back = ok_ends[i] if i < len(ok_ends) else None
        if back is None or back - f > max_gap:
            problems.append(f"no timestamp within {max_gap}s of the fault at {f:.3f}"
                            + ("" if back is None else f" (next at {back:.3f})"))
    return problems
