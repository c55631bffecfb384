"""`netcabal submit`: a scenario job (or a sweep) on a Ray cluster, through
the Ray Jobs API, with its results folder brought back.

The job's working directory is a small folder made for it: the `actors` and
`cluster` packages, the `scenarios` folder and the scenario file itself, so
the job runs the same code as the client even where the cluster has an older
netcabal installed (numpy, msgpack and rich must be on the cluster's nodes,
as they are in the container image of deploy/).  The job runs
`python -m cluster.cli run|sweep ... --engine ray --emit-results`, which,
once the results folder is complete, prints it to the job's log as a
base64 tar.gz between marker lines; the client streams the log (without
that block), then unpacks the folder locally.  A failed job leaves no
local folder.
"""

from __future__ import annotations

import base64
import io
import os
import shlex
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

BEGIN = "NETCABAL-RESULTS-BEGIN"
END = "NETCABAL-RESULTS-END"
REPO = Path(__file__).resolve().parent.parent


def emit_results(folder: Path, stream=None) -> None:
    """Print a results folder as a base64 tar.gz block (for the job's log)."""
    stream = stream or sys.stdout
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=".")
    data = base64.b64encode(buf.getvalue()).decode()
    stream.write(f"{BEGIN}\n")
    for i in range(0, len(data), 76):
        stream.write(data[i:i + 76] + "\n")
    stream.write(f"{END}\n")
    stream.flush()


def extract_results(log: str, out: Path) -> Path:
    """Unpack the results block of a job log into `out` (atomically)."""
    if BEGIN not in log or END not in log:
        raise RuntimeError("the job's log holds no results block")
    body = log.split(BEGIN, 1)[1].split(END, 1)[0]
    data = base64.b64decode("".join(body.split()))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _visible(log: str) -> str:
    """The log without the results block (and without a block still arriving)."""
    if BEGIN not in log:
        return log
    head, rest = log.split(BEGIN, 1)
    if END in rest:
        return head + rest.split(END, 1)[1]
    return head


def job_dir(scenario: Path) -> tuple[Path, str]:
    """A working directory for the job; returns it and the scenario's path in it."""
    d = Path(tempfile.mkdtemp(prefix="netcabal-job-"))
    for pkg in ("actors", "cluster"):
        shutil.copytree(REPO / pkg, d / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    if (REPO / "scenarios").is_dir():
        shutil.copytree(REPO / "scenarios", d / "scenarios")
    shutil.copy(scenario, d / "job-scenario.toml")
    # unique content, so that two jobs never share (and garbage-collect) one
    # working-directory package in the cluster
    (d / ".netcabal-job").write_text(f"{d.name} {os.getpid()} {time.time_ns()}\n")
    return d, "job-scenario.toml"


def submit(scenario, address: str, sweeps: list, sets: list, out: Path,
           placement: str = "packed", poll_s: float = 0.5, stream=None) -> int:
    """Submit, stream the log, bring the results back. Returns an exit status."""
    os.environ.setdefault("RAY_AUTH_MODE", "token")     # Ray 2.60 clusters: token auth
    from ray.job_submission import JobStatus, JobSubmissionClient

    from .scenario import load
    stream = stream or sys.stdout
    scenario = Path(scenario)
    if sweeps:
        from .sweep import plan
        plan(scenario, sweeps, sets)     # refuse a bad grid before submitting
    else:
        load(scenario, sets)
    wd, rel = job_dir(scenario)
    # an absolute folder on the head node for the job's results (the job's
    # working directory is Ray's to manage)
    job_out = f"/tmp/netcabal-jobs/{wd.name}/results"
    args = ["python", "-m", "cluster.cli"]
    if sweeps:
        args += ["sweep", rel, "--engine", "ray", "--out", job_out]
        for s in sweeps:
            args += ["--sweep", s]
    else:
        args += ["run", rel, "--engine", "ray", "--placement", placement, "--json",
                 "--out", job_out]
    for s in sets:
        args += ["--set", s]
    args.append("--emit-results")
    entry = " ".join(shlex.quote(a) for a in args)
    env = {k: os.environ[k] for k in ("RAY_AUTH_MODE",) if k in os.environ}
    try:
        client = JobSubmissionClient(address)
        job = client.submit_job(entrypoint=entry,
                                runtime_env={"working_dir": str(wd), "env_vars": env},
                                metadata={"netcabal": "submit", "scenario": scenario.name})
        stream.write(f"submitted job {job} to {address}: {entry}\n")
        shown = 0
        while True:
            status = client.get_job_status(job)
            log = client.get_job_logs(job)
            vis = _visible(log)
            if len(vis) > shown:
                stream.write(vis[shown:])
                stream.flush()
                shown = len(vis)
            if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
                break
            time.sleep(poll_s)
        if status != JobStatus.SUCCEEDED:
            info = client.get_job_info(job)
            stream.write(f"job {job} {status.value}: {info.message or ''}\n")
            return 1
        dest = extract_results(client.get_job_logs(job), out)
        stream.write(f"results: {dest}\n")
        return 0
    finally:
        shutil.rmtree(wd, ignore_errors=True)
