"""The `netcabal` command.

  netcabal run SCENARIO [--engine local|ray] [--set KEY=VALUE]... [--out DIR] [--json]
  netcabal sweep SCENARIO --sweep KEY=V1,V2 [--sweep ...] [--engine local|ray] [--out DIR]
  netcabal submit SCENARIO [--address http://HEAD:8265] [--sweep KEY=V1,V2]... [--out DIR]
  netcabal replay PCAP [--scenario S] [--pps N] [--out DIR] [--json]
  netcabal bench [--scenario S] [--set KEY=VALUE] [--duration-ms N] [--repeat N] [--engine local|ray] [--json]

Exit status: 0 on success, 2 for a bad scenario or bad arguments (the message
names the file, the key and the reason), 1 when a run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .scenario import ScenarioError, load

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SCENARIO = REPO / "scenarios" / "quickstart.toml"
if not DEFAULT_SCENARIO.exists():          # installed, not editable: look where we are
    DEFAULT_SCENARIO = Path("scenarios") / "quickstart.toml"


def _windows_per_call(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"wants a whole number of windows, 1 or more, not {text!r}")
    return n


def _progress_bar(enabled: bool):
    """A rich progress bar on a terminal, else nothing."""
    if not enabled:
        return None, None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    prog = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total} windows"), TimeElapsedColumn(),
                    transient=True)
    return prog, prog


def _summary_table(m: dict, out_dir) -> None:
    from rich.console import Console
    from rich.table import Table

    from .reports import summary_rows
    t = Table(title=f"netcabal: {m['scenario']['name']} "
                    f"({m['scenario']['duration_ns'] / 1e6:g} ms virtual, seed {m['scenario']['seed']})")
    t.add_column("", style="bold")
    t.add_column("what")
    t.add_column("value", justify="right")
    sec = None
    for s, label, val in summary_rows(m):
        t.add_row(s if s != sec else "", label, val)
        sec = s
    c = Console()
    c.print(t)
    if out_dir:
        c.print(f"results: {out_dir}")


def cmd_run(a) -> int:
    scn = load(a.scenario, a.set)
    from .run import run, write_results
    opts = {}
    if a.engine == "ray":
        opts = {"placement": a.placement, "workers": a.workers, "address": a.address,
                "fault": a.fault, "windows_per_call": a.windows_per_call,
                "lookahead": a.lookahead}
    show = not a.json and sys.stdout.isatty()
    prog, ctx = _progress_bar(show)
    try:
        if prog is not None:
            with ctx:
                task = prog.add_task(scn["name"], total=scn["windows"])
                res = run(scn, engine=a.engine,
                          progress=lambda done, total: prog.update(task, completed=done), **opts)
        else:
            res = run(scn, engine=a.engine, **opts)
    except RuntimeError as e:
        if type(e).__name__ != "RunError":
            raise
        print(f"netcabal: {e}", file=sys.stderr)
        return 1
    out = Path(a.out) if a.out else Path("results") / scn["name"]
    write_results(res, out)
    if a.emit_results:
        from .submit import emit_results
        emit_results(out)
    if a.json:
        m = res.metrics
        print(json.dumps({"results": str(out), "totals": m["totals"], "latency_ns": {
            k: v for k, v in m["latency_ns"].items() if k != "log2_hist"}}, sort_keys=True))
    else:
        _summary_table(res.metrics, out)
    return 0


def _sweep_table(rows: list, out) -> None:
    from rich.console import Console
    from rich.table import Table
    t = Table(title=f"sweep: {len(rows)} points")
    keys = [k for k in rows[0] if k != "results"]
    for k in keys:
        t.add_column(k, justify="right")
    for r in rows:
        t.add_row(*[f"{r[k]:,}" if isinstance(r[k], int) else str(r[k]) for k in keys])
    c = Console()
    c.print(t)
    c.print(f"results: {out} (sweep.csv, sweep.json, one folder per point)")


def cmd_sweep(a) -> int:
    from .sweep import plan, run_sweep
    points = plan(a.scenario, a.sweep, a.set)          # validates every point first
    out = Path(a.out) if a.out else Path("results") / f"{points[0][2]['name']}-sweep"
    show = not a.json and sys.stdout.isatty()
    prog, ctx = _progress_bar(show)
    if prog is not None:
        with ctx:
            task = prog.add_task("sweep", total=len(points))
            rows = run_sweep(a.scenario, a.sweep, a.set, out, engine=a.engine, address=a.address,
                             progress=lambda d, t: prog.update(task, completed=d))
    else:
        rows = run_sweep(a.scenario, a.sweep, a.set, out, engine=a.engine, address=a.address)
    if a.emit_results:
        from .submit import emit_results
        emit_results(out)
    if a.json:
        print(json.dumps({"results": str(out), "points": rows}, sort_keys=True))
    else:
        _sweep_table(rows, out)
    return 0


def cmd_submit(a) -> int:
    from .scenario import load as _load
    from .submit import submit
    name = _load(a.scenario, a.set)["name"]
    out = Path(a.out) if a.out else Path("results") / (f"{name}-sweep" if a.sweep else name)
    address = a.address or os.environ.get("RAY_ADDRESS", "")
    if not address.startswith("http"):
        address = "http://127.0.0.1:8265"
    return submit(a.scenario, address, a.sweep, a.set, out, placement=a.placement)


def cmd_replay(a) -> int:
    from .replay import ReplayRefused, plan, summary
    from .run import run, write_results
    try:
        scn = plan(a.pcap, a.scenario, pps=a.pps)
    except ReplayRefused as e:
        print(f"netcabal: cannot replay: {e}", file=sys.stderr)
        return 2
    res = run(scn)
    out = Path(a.out) if a.out else Path("results") / scn["name"]
    write_results(res, out)
    r = summary(scn, res.metrics)
    r["results"] = str(out)
    if a.json:
        print(json.dumps(r, sort_keys=True))
    else:
        print(f"{r['file']}: {r['format']}, link type {r['linktype']}")
        print(f"  frames     {r['frames']:,}")
        print(f"  delivered  {r['delivered']:,}"
              + (f"  ({', '.join(f'{k} {v:,}' for k, v in r['delivered_by'].items())})"
                 if r["delivered_by"] else ""))
        print(f"  dropped    {r['dropped_total']:,}")
        for k, v in sorted(r["dropped"].items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"    {k:<24} {v:,}")
        print(f"  in flight  {r['in_flight']:,}")
        if r["truncated"] or r["problem"]:
            print(f"  note: the capture is cut short or damaged: {r['problem']}; "
                  "replayed as far as it goes")
        print(f"results: {out} (delivered.pcapng, dropped.pcapng with the drop reasons)")
    return 0


def _settle_s(v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, not {v!r}") from None
    if not x >= 0 or x == float("inf"):
        raise argparse.ArgumentTypeError(f"expected 0 or more seconds, not {v!r}")
    return x


def _settled(st: dict) -> str:
    """The bench's line on how long its timed runs waited for the machine."""
    if st["runs"] == 0:
        return "timed runs did not wait for the machine to settle (--settle 0)"
    if st["runs"] == st["gave_up"]:
        return (f"each timed run waited for the machine to settle (cores 85% idle for 0.2 s): "
                f"it never did in {st['limit_s']:g} s ({st['runs']} runs), or this system cannot tell")
    line = (f"each timed run waited for the machine to settle (cores 85% idle for 0.2 s): "
            f"median {st['median_s']:.1f} s, at most {st['max_s']:.1f} s ({st['runs']} runs)")
    if st["gave_up"]:
        line += f"; {st['gave_up']} gave up after {st['limit_s']:g} s and ran anyway"
    return line


def cmd_bench(a) -> int:
    if a.engine == "ray":
        from .bench import bench_ray
        workers = [int(x) for x in a.workers.split(",")]
        r = bench_ray(a.scenario, duration_ms=a.duration_ms or 20.0, repeat=a.repeat,
                      workers=workers, address=a.address, sets=a.set,
                      windows_per_call=a.windows_per_call, calm=a.settle,
                      lookahead=a.lookahead)
        if a.json:
            print(json.dumps(r, sort_keys=True))
            return 0
        print(f"scenario  {r['scenario']}  ({r['virtual_ms']:g} ms virtual, {r['windows']} windows "
              f"of {r['quantum_ns']} ns), Ray, model {r['core']}")
        print(f"runs alternate between the placements; best and median of {r['repeat']}")
        print(f"{'placement':<15} {'workers':>7} {'packets/s':>11} {'median':>9} {'us/window':>10} "
              f"{'engine us/window':>17} {'speed-up':>9} {'median':>7}")
        for x in r["runs"]:
            print(f"{x['placement']:<15} {x['workers'] or '-':>7} {x['pps']:>11,.0f} "
                  f"{x['pps_median']:>9,.0f} {x['us_per_window']:>10,.0f} "
                  f"{x['engine_us_per_window']:>17,.0f} {x['speedup_vs_1_worker']:>8.2f}x "
                  f"{x['speedup_median_vs_1_worker']:>6.2f}x")
        print("the best run's window, split (us): the busiest Ray actor's model step, its "
              "fetching, decoding and encoding of messages, and its direct exchange with the other "
              "Ray actors (waiting for them included); the rest is Ray's and waiting")
        for x in r["runs"]:
            print(f"  {x['placement']:<15} {x['workers'] or '-':>7}  model {x['model_us_per_window']:>8,.0f}"
                  f"  messages {x['codec_us_per_window']:>7,.0f}  exchange {x['exchange_us_per_window']:>7,.0f}"
                  f"  rest {x['other_us_per_window']:>7,.0f}  ({x['windows_per_call']} "
                  f"window{'s' if x['windows_per_call'] != 1 else ''} a call at most"
                  f"{', CPUs a window ahead' if x.get('lookahead') else ''})")
        print("speed-up round by round (each run against the 1-worker run of its round):")
        for x in r["runs"]:
            if x["workers"] != 1 and x["speedup_pairs_vs_1_worker"]:
                print(f"  {x['placement']:<15} {x['workers'] or '-':>7}  "
                      + " ".join(f"{v:.2f}x" for v in x["speedup_pairs_vs_1_worker"])
                      + f"  (median {x['speedup_pair_median_vs_1_worker']:.2f}x)")
        ceilings = [x for x in r["runs"] if x.get("ceiling_pairs")]
        if ceilings:
            if r["gauge"]["mode"] == "groups":
                print("the machine's ceiling in the same rounds: the packed split's groups on the local "
                      "engine in plain processes at once, the slowest against the whole host alone, each "
                      "on its own and in step (waiting for the others after every window, as the workers "
                      "do; no Ray, no messages between them; cluster/gauge.py):")
            else:
                print("the machine's ceiling in the same rounds: the whole host on the local engine in as "
                      "many plain processes at once, each against one alone, each on its own and in step "
                      "(waiting for the others after every window, as the workers do; cluster/gauge.py):")
            if a.lookahead:
                print("  and a window apart (after window w each waits for the others' frame of w - 1 "
                      "only, the slack of --lookahead):")
            for x in ceilings:
                for key, label in (("ceiling", "on its own"), ("ceiling_lockstep", "in step"),
                                   ("ceiling_slack", "a window apart")):
                    if key + "_pairs" not in x:
                        continue
                    print(f"  {label:<15} {x['workers']:>7}  "
                          + " ".join(f"{v:.2f}x" for v in x[key + "_pairs"])
                          + f"  (median {x[key + '_pair_median']:.2f}x)")
            pm = r["gauge"]["pps_median"]
            print(f"  the same in packets/s, median of the rounds (no Ray; hold against the median "
                  f"column above): alone {pm['alone']:,.0f}  split on its own {pm['on_its_own']:,.0f}  "
                  f"in step {pm['in_step']:,.0f}"
                  + (f"  a window apart {pm['a_window_apart']:,.0f}" if "a_window_apart" in pm else ""))
        elif r.get("gauge") is None and a.address:
            print("(the machine's ceiling is not measured on a cluster: the workers are other machines)")
        print(_settled(r["settle"]))
        for x in r["runs"]:
            if x.get("groups") and len(x["groups"]) > 1:
                print(f"packed over {x['workers']}: " + "  ".join(f"pack{i}={g}" for i, g in enumerate(x["groups"]))
                      + f"  (packets crossing, estimated: {x['crossing_pps_estimate']:,.0f}/s)")
        return 0
    from .bench import bench
    r = bench(a.scenario, duration_ms=a.duration_ms or 200.0, repeat=a.repeat, sets=a.set,
              calm=a.settle)
    if a.json:
        print(json.dumps(r, sort_keys=True))
    else:
        print(f"scenario              {r['scenario']}  ({r['virtual_ms']:g} ms virtual, "
              f"{r['windows']} windows of {r['quantum_ns']} ns)")
        print(f"packets simulated     {r['packets']:,}")
        print(f"wall time             {r['wall_s']:.3f} s (best of {r['repeat']})")
        print(f"simulated packets/s   {r['pps']:,.0f}  (one core, local engine, model {r['core']})")
        print(f"engine cost / window  {r['engine_us_per_window']:.1f} us "
              f"({r['actors']} actors, no traffic)")
        print(f"total cost / window   {r['us_per_window']:.1f} us")
        pr = r["probe"]
        print(f"machine probe         {pr['probe_ms_median']:.1f} ms, median beside the runs "
              f"({pr['steps']:,}-step CPython loop; runs: "
              + " ".join(f"{x:.1f}" for x in pr["probe_ms"]) + ")")
        print(f"packets a probe       {pr['packets_per_probe_median']:,.0f}, median (each run's "
              f"rate times its probe: steadier than the rate while the machine's speed swings)")
        print(_settled(r["settle"]))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="netcabal", description=(
        "An actor-model emulator of the FreeBSD inbound network stack."))
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a scenario and write a results folder")
    r.add_argument("scenario")
    r.add_argument("--engine", default="local", choices=["local", "ray"],
                   help="local: one process; ray: Ray actors (RAY_ADDRESS/--address, else a local Ray)")
    r.add_argument("--placement", default="packed", choices=["packed", "per-component"],
                   help="with --engine ray: one Ray actor per component, or a few packed ones")
    r.add_argument("--workers", type=int, default=None,
                   help="with --placement packed: how many Ray actors (default: Ray's CPU count)")
    r.add_argument("--address", default=None, help="Ray cluster address (default: RAY_ADDRESS)")
    r.add_argument("--fault", default=None, metavar="COMPONENT@WINDOW",
                   help="with --engine ray: make the Ray actor holding COMPONENT exit at WINDOW "
                        "(tests failure handling)")
    r.add_argument("--windows-per-call", type=_windows_per_call, default=None, metavar="N",
                   help="with --engine ray: windows one call on the Ray actors runs at most "
                        "(default 1: every message through Ray; more: the Ray actors swap the "
                        "packet-free messages of the windows inside a call over direct connections)")
    r.add_argument("--lookahead", action="store_true",
                   help="with --engine ray, packed, --windows-per-call 2 or more: each Ray actor "
                        "steps its CPUs a window ahead, so the Ray actors may run a window apart "
                        "(the same results; a placement whose Ray actors exchange more than the "
                        "CPUs' published state is refused with the message that broke it)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key (a sysctl name, TABLE.KEY or LIST.NAME.KEY)")
    r.add_argument("--out", help="results folder (default results/<scenario name>)")
    r.add_argument("--json", action="store_true", help="print a JSON summary, no progress bar")
    r.add_argument("--emit-results", action="store_true",
                   help="also print the results folder as a base64 tar.gz block (used by submit)")
    sw = sub.add_parser("sweep", help="run a scenario over a grid of values")
    sw.add_argument("scenario")
    sw.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                    help="an axis of the grid (also taken from the scenario's [sweep] table)")
    sw.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    sw.add_argument("--engine", default="local", choices=["local", "ray"],
                    help="ray: every point a Ray task, the points run concurrently")
    sw.add_argument("--address", default=None, help="Ray cluster address (default: RAY_ADDRESS)")
    sw.add_argument("--out", help="sweep folder (default results/<name>-sweep)")
    sw.add_argument("--json", action="store_true")
    sw.add_argument("--emit-results", action="store_true", help=argparse.SUPPRESS)
    rp = sub.add_parser("replay", help="replay a pcap/pcapng capture through a host")
    rp.add_argument("pcap")
    rp.add_argument("--scenario", default=None, help="use this scenario's host (default: a replay host)")
    rp.add_argument("--pps", type=float, default=100_000.0, help="frames per second (default 100,000)")
    rp.add_argument("--out", help="results folder (default results/replay-<file>)")
    rp.add_argument("--json", action="store_true")
    sm = sub.add_parser("submit", help="run a scenario (or a sweep) as a Ray job on a cluster")
    sm.add_argument("scenario")
    sm.add_argument("--address", default=None,
                    help="the cluster's dashboard, http://HEAD:8265 (default: RAY_ADDRESS if http)")
    sm.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...")
    sm.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    sm.add_argument("--placement", default="packed", choices=["packed", "per-component"])
    sm.add_argument("--out", help="where to put the results folder brought back")
    b = sub.add_parser("bench", help="measure the emulator's speed")
    b.add_argument("--scenario", default=str(DEFAULT_SCENARIO))
    b.add_argument("--duration-ms", type=float, default=None,
                   help="virtual time (default 200 ms local, 20 ms on Ray)")
    b.add_argument("--repeat", type=int, default=3)
    b.add_argument("--engine", default="local", choices=["local", "ray"])
    b.add_argument("--workers", default="1,2", help="with --engine ray: packed worker counts to time")
    b.add_argument("--address", default=None)
    b.add_argument("--windows-per-call", type=_windows_per_call, default=None, metavar="N",
                   help="with --engine ray: windows one call on the Ray actors runs at most "
                        "(default 1; see run --help)")
    b.add_argument("--lookahead", action="store_true",
                   help="with --engine ray and --windows-per-call 2 or more: the packed runs "
                        "with their CPUs a window ahead (see run --help)")
    b.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key (e.g. host.cache_model=false)")
    b.add_argument("--settle", type=_settle_s, default=10.0, metavar="S",
                   help="wait up to S seconds before each timed run for the machine's cores to be "
                        "85%% idle (default 10; 0: do not wait)")
    b.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    try:
        return {"run": cmd_run, "bench": cmd_bench, "sweep": cmd_sweep,
                "submit": cmd_submit, "replay": cmd_replay}[a.cmd](a)
    except ScenarioError as e:
        print(f"netcabal: bad scenario: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
