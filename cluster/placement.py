"""Placement: which emulated components share a Ray actor.

`per-component` gives every CPU, NIC, netisr workstream and vnet its own Ray
actor.  `packed` groups them into a few (one per worker), and where the cut
falls decides how fast the run goes: a packet that crosses from one Ray
actor to another is encoded, put in the object store, fetched and decoded -
about as much work again as the model does for it (the mbuf codec is ~4,000
instructions a packet each way against ~19,000 for the whole inbound path on
bench-4nic) - while one that stays inside an actor costs nothing extra.

So the packed placement estimates, from the scenario alone, where packets go
and what each component costs, and picks the better of two layouts by the
estimated time of its slowest Ray actor (its components' work plus the codec
for every packet that enters or leaves it):

  * islands: the components joined by packet flows (a NIC, the workstreams
    its rx queues reach, the vnets of the NIC and its VLANs; a vnet's
    loopback senders and the workstreams they reach) form islands that
    exchange no packets with each other; the islands are dealt, heaviest
    first, to the least loaded group, so no packet crosses.  Each CPU goes
    with the group holding its netisr workstream (else a NIC whose vector is
    on it): CPUs exchange only a few control messages a window.
  * pipeline: the components in pipeline order (NICs, netisrs, vnets, CPUs)
    cut into `workers` contiguous chunks of about equal load, so a packet
    crosses about once (NIC -> netisr) whatever the host looks like.

A host whose NICs each keep their traffic on their own workstreams and in
their own vnet (netisr.rxq_offset, a jail per NIC pair) splits into islands
with nothing crossing; one whose NICs hash flows over every workstream into
one vnet is one island, and gets the pipeline cut.

The flow estimate is deliberately generous: a NIC whose rx queues are not
all pinned reaches every workstream (flow, cpu and source policies alike,
since rcvif may be a VLAN's), and hybrid dispatch has both the direct and
the queued paths.  tests/test_placement.py checks, for every shipped
scenario, that every packet edge the model really uses is in the estimate.
The cost weights are relative, from timing each actor's step and the codec
on bench-4nic (compiled model).  Nothing here changes results: metrics are
byte-identical whatever the grouping (design §2).
"""

from __future__ import annotations

PLACEMENTS = ("per-component", "packed")
_KIND_ORDER = ("ix", "netisr", "vnet", "cpu")

# relative cost of each kind of component per packet it handles (compiled
# model on bench-4nic: NICs 53%, vnet 24%, netisrs 22%, CPUs 1%)
COST = {"ix": 6.0, "netisr": 2.5, "vnet": 2.7, "cpu": 0.04}
# the same units, per packet sent to another Ray actor (encode and put) and
# per packet received from one (fetch and decode)
CROSS_OUT = 4.0
CROSS_IN = 3.0
# per actor per window, whether or not it has packets (an idle actor's step)
IDLE = 3.4


def kind(name: str) -> int:
    for i, k in enumerate(_KIND_ORDER):
        if name.startswith(k):
            return i
    return len(_KIND_ORDER)


def _kname(name: str) -> str:
    k = kind(name)
    return _KIND_ORDER[k] if k < len(_KIND_ORDER) else "cpu"


def nic_rates(scn: dict) -> dict:
    """Each NIC's offered packets a second (all its traffic sources)."""
    rate = {}
    for t in scn.get("traffic", []):
        rate[t["nic"]] = rate.get(t["nic"], 0.0) + float(t.get("rate_pps", 0.0))
    return rate


def flows(scn: dict) -> dict:
    """Estimated packet flows: {(sender, receiver): packets a second}.

    Every edge the model can use is here (possibly more); the rates split a
    NIC's offered load evenly over the places it may go."""
    ns = scn["netisr"]
    wss = list(ns["workstreams"])
    pin = ns.get("pin", {})
    dispatch = ns.get("dispatch", "deferred")
    rate = nic_rates(scn)
    out = {}

    def add(a, b, r):
        out[(a, b)] = out.get((a, b), 0.0) + r

    for n in scn["nics"]:
        name = n["name"]
        r = rate.get(name, 0.0)
        vnets = sorted({f"vnet.{n['vnet']}"} | {f"vnet.{v['vnet']}" for v in n.get("vlans", [])})
        if len(wss) == 1:
            reach = wss
        elif name in pin:
            reach = [wss[pin[name]]]
        else:
            qs = [pin.get(f"{name}:rxq{j}") for j in range(n.get("queues", 1))]
            reach = sorted({wss[q] for q in qs}) if all(q is not None for q in qs) else wss
        if dispatch in ("direct", "hybrid"):
            for v in vnets:
                add(name, v, r / len(vnets))
        if dispatch in ("deferred", "hybrid"):
            for w in reach:
                add(name, w, r / len(reach))
                for v in vnets:
                    add(w, v, r / len(reach) / len(vnets))
    for vn, v in scn["vnets"].items():
        r = sum(float(a.get("rate_pps", 0.0)) for a in v.get("apps") or [])
        if v.get("apps"):
            for w in wss:           # lo0 -> netisr -> back into the vnet
                add(f"vnet.{vn}", w, r / len(wss))
                add(w, f"vnet.{vn}", r / len(wss))
    return out


def loads(names: list, scn: dict | None, fl: dict | None = None) -> dict:
    """Each component's estimated cost a second (relative units)."""
    if scn is None:
        return {n: IDLE for n in names}
    fl = flows(scn) if fl is None else fl
    into = {}
    for (_, b), r in fl.items():
        into[b] = into.get(b, 0.0) + r
    rate = nic_rates(scn)
    total = sum(rate.values())
    # direct dispatch: the ithread runs the protocols' input itself
    ix_cost = COST["ix"] + (COST["netisr"] if scn["netisr"].get("dispatch") == "direct" else 0.0)
    per_window = IDLE * 1e9 / scn["quantum_ns"]
    out = {}
    for n in names:
        k = _kname(n)
        if k == "ix":
            work = ix_cost * rate.get(n, 0.0)
        elif k == "cpu":
            work = COST["cpu"] * total
        else:
            work = COST[k] * into.get(n, 0.0)
        out[n] = work + per_window
    return out


def makespan(groups: list, ld: dict, fl: dict) -> float:
    """The estimated cost a second of the busiest group, codec included."""
    where = {n: i for i, g in enumerate(groups) for n in g}
    cost = [sum(ld.get(n, 0.0) for n in g) for g in groups]
    for (a, b), r in fl.items():
        ga, gb = where.get(a), where.get(b)
        if ga is not None and gb is not None and ga != gb:
            cost[ga] += CROSS_OUT * r
            cost[gb] += CROSS_IN * r
    return max(cost) if cost else 0.0


def pipeline_groups(names: list, k: int, ld: dict) -> list:
    """Pipeline order cut into k contiguous chunks of about equal load."""
    order = sorted(names, key=lambda n: (kind(n), n))
    target = sum(ld[n] for n in order) / k
    groups, cur, acc = [], [], 0.0
    for n in order:
        x = ld[n]
        left = len(order) - len(groups) - 1
        if cur and acc + x / 2 > target and len(groups) < k - 1 and left > 0:
            groups.append(cur)
            cur, acc = [], 0.0
        cur.append(n)
        acc += x
    groups.append(cur)
    return [sorted(g) for g in groups if g]


def island_groups(names: list, k: int, ld: dict, fl: dict, scn: dict) -> list:
    """Packet islands dealt heaviest first to the least loaded of k groups;
    each CPU then joins its workstream's (or its NICs') group."""
    parent = {n: n for n in names}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for (a, b), r in fl.items():
        if a in parent and b in parent:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    cpus = [n for n in names if _kname(n) == "cpu"]
    islands = {}
    for n in names:
        if n not in cpus:
            islands.setdefault(find(n), []).append(n)
    isl = sorted(islands.values(), key=lambda g: (-sum(ld[n] for n in g), min(g)))
    groups = [[] for _ in range(k)]
    cost = [0.0] * k
    for g in isl:
        i = min(range(k), key=lambda j: (cost[j], j))
        groups[i] += g
        cost[i] += sum(ld[n] for n in g)
    where = {n: i for i, g in enumerate(groups) for n in g}
    home = {}                   # cpu name -> components whose threads run there
    for w, c in zip(scn["netisr"]["workstreams"], scn["netisr"]["cpus"]):
        home.setdefault(f"cpu{c}", []).append(w)
    for n in scn["nics"]:
        for c in n.get("irq_cpus", []):
            if c is not None:
                home.setdefault(f"cpu{c}", []).append(n["name"])
    for c in sorted(cpus, key=lambda n: (len(n), n)):
        there = [where[x] for x in home.get(c, []) if x in where]
        i = there[0] if there else min(range(k), key=lambda j: (cost[j], j))
        groups[i].append(c)
        cost[i] += ld[c]
    return [sorted(g) for g in groups if g]


def groups_for(names: list, placement: str, workers: int, scn: dict | None = None) -> list:
    """Component names grouped into Ray actors (see the module comment)."""
    names = sorted(names)
    if placement == "per-component":
        return [[n] for n in names]
    if placement != "packed":
        raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}")
    k = max(1, min(workers, len(names)))
    fl = flows(scn) if scn is not None else {}
    ld = loads(names, scn, fl)
    pipe = pipeline_groups(names, k, ld)
    if k == 1 or scn is None:
        return pipe
    isl = island_groups(names, k, ld, fl, scn)
    return isl if makespan(isl, ld, fl) < makespan(pipe, ld, fl) else pipe


def crossing(groups: list, fl: dict) -> float:
    """Estimated packets a second that cross between the groups."""
    where = {n: i for i, g in enumerate(groups) for n in g}
    return sum(r for (a, b), r in fl.items()
               if where.get(a) is not None and where.get(b) is not None and where[a] != where[b])
