"""The window engine: canonical order, rounding to the window's end,
independence of actors within a window, and CPU arbitration by debt."""

from array import array

from hypothesis import given, settings, strategies as st

from actors.base import Actor, KThread, PRI_ITHD, PRI_USER
from actors.cpu import Cpu
from cluster.engine import LocalExecutor

Q = 1000


class Sender(Actor):
    """Sends, in window w, messages to 'rx' with the given latencies."""

    def __init__(self, name, plan):
        self.name = name
        self.plan = plan        # window -> [latency_ns]

    def step(self, start, end, inbox):
        w = start // Q
        return [("rx", "m", [self.name, w, lat], start + lat) for lat in self.plan.get(w, [])]


class Recorder(Actor):
    name = "rx"

    def __init__(self):
        self.got = []

    def step(self, start, end, inbox):
        for m in inbox:
            self.got.append((start, end) + m[:3] + (tuple(m[5]),))
        return []


def _run(actors, windows):
    ex = LocalExecutor(actors, Q)
    ex.run(windows)
    return ex


def test_canonical_order_and_rounding():
    a = Sender("a", {0: [10, 5000, 999, 0], 2: [2500]})
    b = Sender("b", {0: [3, 1500], 1: [1]})
    rx = Recorder()
    _run([rx, b, a], 6)
    for wstart, wend, due, sender, seq, (who, w_sent, lat) in rx.got:
        sent_end = (w_sent + 1) * Q
        # due no earlier than the end of the sending window, else at its time
        assert due == max(w_sent * Q + lat, sent_end)
        assert wstart <= due < wend
    keys = [g[2:5] for g in rx.got]
    assert keys == sorted(keys)
    # both senders' messages that round to the same instant come sender-sorted
    first = [g for g in rx.got if g[2] == Q]
    assert [g[3] for g in first] == ["a", "a", "a", "b"]
    assert len(rx.got) == 8


def test_step_order_does_not_matter():
    plans = {0: [1, 2, 3], 1: [1500, 10], 3: [0]}
    r1, r2 = Recorder(), Recorder()
    e1 = LocalExecutor([Sender("a", plans), Sender("b", plans), r1], Q)
    e2 = LocalExecutor([r2, Sender("b", plans), Sender("a", plans)], Q)
    e2.actors.reverse()          # step in the opposite order
    e1.run(5)
    e2.run(5)
    assert r1.got == r2.got


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.integers(0, 4), st.lists(st.integers(0, 3 * Q), max_size=4),
                                max_size=4), min_size=1, max_size=4),
       st.randoms(use_true_random=False))
def test_inboxes_canonical_whatever_the_latencies_and_step_order(plans, rnd):
    """The engine sorts only the boxes it marked mixed: whatever the
    latencies (at the window's end, inside the next window, windows later)
    and whatever order the actors are stepped in, every inbox arrives in
    (deliver_ns, sender, seq) order and the same for every order."""
    def run(shuffle):
        rx = Recorder()
        ex = LocalExecutor([Sender(f"s{i}", p) for i, p in enumerate(plans)] + [rx], Q)
        if shuffle:
            rnd.shuffle(ex.host.actors)
        ex.run(9)
        return rx.got
    base = run(False)
    for _ in range(2):
        assert run(True) == base
    for w in range(9):
        keys = [g[2:5] for g in base if g[0] == w * Q]
        assert keys == sorted(keys)
    assert len(base) == sum(len(v) for p in plans for w, v in p.items() if w < 8) - \
        sum(1 for p in plans for w, v in p.items() if w < 8 for lat in v
            if max(w * Q + lat, (w + 1) * Q) >= 9 * Q)


def test_unknown_destination_is_an_error():
    class Bad(Actor):
        name = "bad"

        def step(self, s, e, inbox):
            return [("nobody", "m", [], e)]
    ex = LocalExecutor([Bad()], Q)
    try:
        ex.run(1)
    except KeyError as e:
        assert "nobody" in str(e)
    else:
        raise AssertionError("message to an unknown actor was accepted")


class Worker(Actor):
    """A thread on cpu0 that gets `demand` ns of work every window and does
    it as soon as it can (a backlog), paying the debts its CPU sends."""

    def __init__(self, name, pri, demand):
        self.name = name
        self.th = KThread(name, name, 0, pri, Q)
        self.demand = demand
        self.backlog = 0
        self.done = 0

    def step(self, start, end, inbox):
        for m in inbox:
            if m[4] == "debt":
                self.th.pay_debt(start, m[5][1])
        self.backlog += self.demand
        th = self.th
        if th.clock < start:
            th.clock = start
        work = min(self.backlog, max(0, end - th.clock))
        th.charge(th.clock, th.clock + work)
        th.clock += work
        self.backlog -= work
        self.done += work
        out = []
        th.report(out, end)
        return out


def test_cpu_arbitration_by_priority():
    """High priority wants 40%, low 80% of one CPU: low gets 60%, CPU 100% busy."""
    windows = 2000
    hi = Worker("hi", PRI_ITHD, 400)
    lo = Worker("lo", PRI_USER, 800)
    cpu = Cpu(0, 1.0, Q)
    _run([hi, lo, cpu], windows)
    total = windows * Q
    assert abs(hi.done / total - 0.40) < 0.005
    assert abs(lo.done / total - 0.60) < 0.01
    assert cpu.busy_ns >= 0.99 * (windows - 2) * Q        # two windows of lag
    assert cpu.granted["intr"] >= 0.995 * hi.done - Q
    # the low thread's backlog grows by what it could not get: 20% per window
    assert abs(lo.backlog / total - 0.20) < 0.01
    assert hi.backlog == 0


def test_cpu_uncontended_threads_pay_nothing():
    a = Worker("a", PRI_ITHD, 300)
    b = Worker("b", PRI_USER, 300)
    cpu = Cpu(0, 1.0, Q)
    _run([a, b, cpu], 500)
    assert a.th.debt_total == 0 and b.th.debt_total == 0
    assert a.done == b.done == 500 * 300


_threads = [("a", "ta", PRI_ITHD), ("b", "tb", 40), ("c", "tc", PRI_USER)]
_reports = st.lists(st.lists(st.tuples(st.integers(0, 2), st.one_of(st.integers(-24, 2), st.integers(40, 80)),
                                       st.integers(0, Q)),
                             max_size=6), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(_reports)
def test_cpu_grants_each_window_once_by_priority(steps):
    """Whatever the threads report, late or ahead (far ahead too: past the
    CPU's ring of windows), a CPU grants each window at most its quantum,
    in priority order, a window it has forgotten (more than KEEP windows
    back) as a fresh one, and owes back as debt exactly what it did not
    grant: the same as the plain rule, step by step."""
    cpu = Cpu(0, 1.0, Q)
    cap = {}
    granted = 0
    wanted = 0
    for k, reps in enumerate(steps):
        start, end = k * Q, (k + 1) * Q
        inbox = []
        for i, (t, dw, used) in enumerate(reps):
            actor, thread, pri = _threads[t]
            w = max(0, k - 1 + dw)
            inbox.append((start, actor, i, "cpu0", "use", [actor, thread, pri, [(w, used)], [], []]))
        out = cpu.step(start, end, inbox)
        # the rule, plainly: reports by (window, priority, thread), each
        # granted what is left of its window
        want = {}
        for w, pri, thread, actor, used in sorted(
                (w, _threads[t][2], _threads[t][1], _threads[t][0], used)
                for t, dw, used in reps for w in [max(0, k - 1 + dw)]):
            got = min(used, cap.get(w, Q))
            cap[w] = cap.get(w, Q) - got
            granted += got
            wanted += used
            if used > got:
                want[(actor, thread)] = want.get((actor, thread), 0) + used - got
        for w in [w for w in cap if w < k - Cpu.KEEP]:
            del cap[w]
        debts = {(dest, p[0]): p[1] for dest, kind, p, _ in out if kind == "debt"}
        assert debts == want
    assert cpu.wanted == wanted
    assert cpu.busy_ns + sum(g for f in cpu.future.values() for g in f.values()) == granted
    assert sum(cpu.granted.values()) == cpu.busy_ns


# -- a thread's time accounting (KThread.charge / add / move / report) -------------

_ops = st.lists(st.one_of(
    st.tuples(st.just("charge"), st.integers(0, 6 * Q), st.integers(0, 3 * Q)),
    st.tuples(st.just("add"), st.integers(0, 6), st.integers(0, Q)),
    st.tuples(st.just("move"), st.integers(0, 2), st.booleans()),
    st.tuples(st.just("count"), st.sampled_from(["intr", "migr"]), st.integers(1, 3)),
    st.tuples(st.just("intr"), st.just(0), st.just(0)),
    st.tuples(st.just("wake"), st.integers(0, 6 * Q), st.booleans()),
    st.tuples(st.just("report"), st.just(0), st.just(0))), max_size=60)


@settings(max_examples=300, deadline=None)
@given(_ops)
def test_thread_reports_every_ns_it_was_charged(ops):
    """Whatever the order of charges (split at window edges), window adds,
    moves between CPUs, events and interrupts counted, wakeups and sleeps,
    and reports, the "use" messages a thread sends add up, per CPU and
    window, to what it was charged there, and per CPU to the events it
    counted there, and carry each wakeup and each sleep once - the CPU
    arbitrates exactly the time the thread used, once, and counts its
    switches once."""
    th = KThread("t", "a", 0, PRI_ITHD, Q)
    want = {}
    got = {}
    want_ev = {}
    got_ev = {}
    wakes = sleeps = 0
    seen = {"starts": 0, "ends": 0}

    def report():
        out = []
        th.report(out, 7 * Q)
        dests = [o[0] for o in out]
        assert len(dests) == len(set(dests))        # one report per CPU
        for dest, kind, payload, _ in out:
            assert kind == "use"
            ws = [w for w, _ in payload[3]]
            assert ws == sorted(set(ws))                # each window once, in order
            for w, ns in payload[3]:
                k = (dest, w)
                got[k] = got.get(k, 0) + ns
            for b in payload[4]:
                seen["starts"] += b[2] != 0
                seen["ends"] += b[3]
            for e, n in payload[5]:
                got_ev[(dest, e)] = got_ev.get((dest, e), 0) + n

    for op, a, b in ops:
        if op == "charge":
            th.charge(a, a + b)
            t = a
            while t < a + b:        # the reference: window by window
                w = t // Q
                seg = min(a + b, (w + 1) * Q) - t
                k = (f"cpu{th.cpu}", w)
                want[k] = want.get(k, 0) + seg
                t += seg
        elif op == "add":
            th.add(a * Q, b)
            if b:
                k = (f"cpu{th.cpu}", a)
                want[k] = want.get(k, 0) + b
        elif op == "move":
            if a != th.cpu:
                if b:
                    k = (f"cpu{a}", "migr")
                    want_ev[k] = want_ev.get(k, 0) + 1
                if th.burst_t0 is not None:
                    wakes += 1          # moved while running: a burst starts there
            th.move(a, b)
        elif op == "count":
            th.count(a, b)
            k = (f"cpu{th.cpu}", a)
            want_ev[k] = want_ev.get(k, 0) + b
        elif op == "intr":              # an interrupt, summed apart until read
            th.intr()
            k = (f"cpu{th.cpu}", "intr")
            want_ev[k] = want_ev.get(k, 0) + 1
        elif op == "wake":
            if th.burst_t0 is None:     # asleep: a wakeup at a
                th.wake(a, b)
                wakes += 1
            else:                       # running: the burst ends at a
                th.sleep(max(a, th.burst_t0))
                sleeps += 1
        else:
            report()
    report()
    assert got == want
    assert th.busy_total == sum(want.values())
    assert got_ev == want_ev
    assert seen == {"starts": wakes, "ends": sleeps}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(*[st.integers(-5, 50)] + [st.integers(-2**63, 2**63 - 1)] * 5),
                max_size=40), st.integers(0, 3), st.integers(0, 3))
def test_burst_rows_sorted_by_start(bursts, before, after):
    """The CPU's burst sort (an insertion sort of int64 rows, mostly in
    order already) leaves rows lo..hi-1 as a sort by start time does (the
    rows of equal start in any order: the sweep does not depend on it),
    every row whole, and the rows outside them untouched."""
    from actors.cpu import BURST_ROW as _NB, _sort_rows
    from actors.cache import zeros
    lo, hi = before, before + len(bursts)
    rows = zeros((hi + after) * _NB)
    for i in range(len(rows)):
        rows[i] = 1000 - i              # outside lo..hi (later starts): must stay as it is
    for i, b in enumerate(bursts):
        rows[(lo + i) * _NB:(lo + i + 1) * _NB] = array("q", b)
    outside = list(rows[:lo * _NB]) + list(rows[hi * _NB:])
    _sort_rows(rows, lo, hi)
    got = [tuple(rows[i * _NB:(i + 1) * _NB]) for i in range(lo, hi)]
    assert [g[0] for g in got] == sorted(b[0] for b in bursts)
    assert sorted(got) == sorted(bursts)
    assert list(rows[:lo * _NB]) + list(rows[hi * _NB:]) == outside


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(1, 10**6),
                          st.lists(st.integers(0, 1000), min_size=6, max_size=6),
                          st.integers(0, 10**5), st.booleans()), max_size=12))
def test_cpu_counts_touches_on_use_reports_as_mem_messages(touches):
    """An actor's touches on a CPU ride on one of its threads' "use" reports
    there (actors/cache.py) or come as a "mem" message of their own; the
    CPU counts the same bytes, lines and ns, and publishes the same counter."""
    apart, merged = Cpu(0, 1.0, Q, subscribers=["x"]), Cpu(0, 1.0, Q, subscribers=["x"])
    ia, im = [], []
    for i, (t, b, lines, ns, alone) in enumerate(touches):
        actor, thread, pri = _threads[t]
        use = [actor, thread, pri, [(0, 10)], [], []]
        ia.append((Q, actor, 2 * i, "cpu0", "use", list(use)))
        ia.append((Q, actor, 2 * i + 1, "cpu0", "mem", [actor, b, lines, ns]))
        if alone:
            im.append((Q, actor, 2 * i, "cpu0", "use", use))
            im.append((Q, actor, 2 * i + 1, "cpu0", "mem", [actor, b, lines, ns]))
        else:
            im.append((Q, actor, 2 * i, "cpu0", "use", use + [b, lines, ns]))
    oa, om = apart.step(Q, 2 * Q, ia), merged.step(Q, 2 * Q, im)
    assert oa == om
    assert apart.metrics() == merged.metrics()
    assert merged.touched == sum(b for _, b, _, _, _ in touches)


@settings(max_examples=200, deadline=None)
@given(_reports)
def test_cpu_publishes_demand_per_thread(steps):
    """The load a CPU publishes ("cstate") is, per (priority, thread) in that
    order, the time the reports it just arbitrated asked for, summed over
    their windows; nothing when it has nothing new to say."""
    cpu = Cpu(0, 1.0, Q, subscribers=["x"])
    for k, reps in enumerate(steps):
        start, end = k * Q, (k + 1) * Q
        inbox = []
        want = {}
        for i, (t, dw, used) in enumerate(reps):
            actor, thread, pri = _threads[t]
            inbox.append((start, actor, i, "cpu0", "use",
                          [actor, thread, pri, [(max(0, k - 1 + dw), used)], [], []]))
            want[(pri, thread)] = want.get((pri, thread), 0) + used
        before = cpu.published
        out = cpu.step(start, end, inbox)
        st = [m[2] for m in out if m[1] == "cstate"]
        expect = [0, 0, [[p, t, ns] for (p, t), ns in sorted(want.items())]]
        if expect == before:
            assert st == []
        else:
            assert st == [expect]


_burst_threads = _threads + [("d", "td", 40)]     # two threads of one priority
# a window's bursts: (thread, start relative to the window, length, starts, ends)
_bursts = st.lists(st.lists(st.tuples(st.integers(0, 3), st.integers(-Q, Q - 1),
                                      st.integers(0, 3 * Q), st.integers(0, 2), st.integers(0, 1)),
                            max_size=8), min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(_bursts, st.integers(1, 12))
def test_cpu_context_switches_as_the_plain_rule(steps, judge):
    """Whatever bursts the threads report (each within LAG windows of its
    start, as KThread reports them), the CPU counts, for every start it has
    judged (older than LAG windows at the last window), the context switches
    of the plain rule: a start covered by a burst of another thread of
    better or equal priority costs nothing, else one covered by a worse one
    is an involuntary switch, else a voluntary one (from idle); a start known
    to preempt is involuntary; every end is voluntary.  However often the
    sweep runs (`judge`)."""
    cpus = [Cpu(0, 1.0, Q, judge=judge), Cpu(0, 1.0, Q, judge=1)]
    every = []
    for k, reps in enumerate(steps):
        start, end = k * Q, (k + 1) * Q
        inbox = []
        for i, (t, dt0, dur, starts, ends) in enumerate(reps):
            actor, thread, pri = _burst_threads[t]
            t0 = max(0, start + dt0)        # in this window or the one before
            b = [t0, t0 + dur, starts, ends]
            every.append((t0, t0 + dur, starts, ends, pri, thread))
            inbox.append((start, actor, i, "cpu0", "use", [actor, thread, pri, [], [b], []]))
        for cpu in cpus:            # (a CPU reads its inbox, never changes it)
            cpu.step(start, end, list(inbox))
    horizon = (len(steps) - 1) * Q - Cpu.LAG * Q
    vol = invol = acts = 0
    for t0, t1, starts, ends, pri, thread in every:
        if t0 >= horizon:
            continue
        vol += ends
        if starts == 2:
            acts += 1
            invol += 1
        elif starts:
            acts += 1
            others = [o for o in every if o[5] != thread and o[0] <= t0 < o[1]]
            if any(o[4] <= pri for o in others):
                pass
            elif others:
                invol += 1
            else:
                vol += 1
    for cpu in cpus:
        m = cpu.metrics()
        assert m["context_switches"] == {"voluntary": vol, "involuntary": invol}
        assert m["activations"] == acts
