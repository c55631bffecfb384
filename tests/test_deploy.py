"""The deployment files under deploy/ agree with the project.

Nothing here builds an image or starts a cluster: the files are parsed and the fields
that must match pyproject.toml (image name and version, Ray version, Python version,
console script) or Ray 2.60's needs (RAY_AUTH_MODE=token on every node) are checked.
"""

from __future__ import annotations

import copy
import importlib
import re
import shlex
import tomllib
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
YAML_FILES = sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _version() -> str:
    return _pyproject()["project"]["version"]


def _image() -> str:
    return f"netcabal:{_version()}"


def _ray_pin() -> str:
    """The version in the `ray[...]==X.Y.Z` dependency."""
    pins = [m.group(1) for d in _pyproject()["project"]["dependencies"]
            if (m := re.fullmatch(r"\s*ray(?:\[[^\]]*\])?\s*==\s*([0-9][0-9.]*)\s*", d))]
    assert len(pins) == 1, f"expected exactly one ray==X.Y.Z pin in pyproject, found {pins}"
    return pins[0]


def _docs(path: Path) -> list:
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def _all_docs() -> list[tuple[Path, dict]]:
    return [(p, d) for p in YAML_FILES for d in _docs(p)]


def _is_launcher(doc: dict) -> bool:
    return "cluster_name" in doc and "provider" in doc


def _walk(node, path=""):
    """Yield (key path, key, value) for every mapping entry, recursively."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield f"{path}.{k}", k, v
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def _ray_cluster_spec(doc: dict) -> dict:
    if doc["kind"] == "RayCluster":
        return doc["spec"]
    if doc["kind"] == "RayJob":
        return doc["spec"]["rayClusterSpec"]
    raise AssertionError(f"not a KubeRay cluster kind: {doc['kind']}")


def _pod_templates(doc: dict) -> list[tuple[str, dict]]:
    """(role, pod spec) of the head, each worker group and a RayJob's submitter."""
    spec = _ray_cluster_spec(doc)
    out = [("head", spec["headGroupSpec"]["template"]["spec"])]
    groups = spec.get("workerGroupSpecs") or []
    assert groups, f"{doc['kind']} {doc['metadata']['name']}: no workerGroupSpecs"
    out += [(f"worker group {g.get('groupName')}", g["template"]["spec"]) for g in groups]
    if doc["kind"] == "RayJob" and doc["spec"].get("submitterPodTemplate"):
        out.append(("submitter", doc["spec"]["submitterPodTemplate"]["spec"]))
    return out


def _parse_cli(argv: list[str], monkeypatch) -> object:
    """Parse argv with the real `netcabal` parser, without running anything."""
    cli = importlib.import_module("cluster.cli")
    seen = {}

    def fake(a):
        seen["args"] = a
        return 0

    monkeypatch.setattr(cli, "cmd_run", fake)
    monkeypatch.setattr(cli, "cmd_bench", fake)
    assert cli.main(argv) == 0
    return seen["args"]


# -- the set of files --------------------------------------------------------------

def test_expected_files_exist():
    names = {p.relative_to(DEPLOY).as_posix() for p in YAML_FILES}
    assert {"cluster.yaml", "kuberay/raycluster.yaml", "kuberay/rayjob.yaml"} <= names, names
    assert DOCKERFILE.is_file()


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_yaml_parses_and_is_known(path):
    docs = _docs(path)
    assert docs, f"{path}: empty"
    for d in docs:
        assert isinstance(d, dict), f"{path}: a document is not a mapping"
        assert _is_launcher(d) or ("apiVersion" in d and "kind" in d), (
            f"{path}: neither a Ray cluster launcher config nor a Kubernetes object")


# -- images and versions -----------------------------------------------------------

def test_every_image_is_the_project_image():
    want = _image()
    found = 0
    for path, doc in _all_docs():
        for where, key, val in _walk(doc):
            if key in ("image", "head_image", "worker_image"):
                found += 1
                assert val == want, f"{path.name}{where}: image {val!r}, expected {want!r}"
    assert found >= 3, "expected images in cluster.yaml, raycluster.yaml and rayjob.yaml"


def test_launcher_config_uses_docker_image():
    launchers = [(p, d) for p, d in _all_docs() if _is_launcher(d)]
    assert launchers, "no Ray cluster launcher config under deploy/"
    for path, doc in launchers:
        assert doc.get("docker", {}).get("image") == _image(), f"{path.name}: docker.image"


def test_kuberay_ray_version_is_the_pin():
    pin = _ray_pin()
    kinds = set()
    for path, doc in _all_docs():
        if doc.get("kind") in ("RayCluster", "RayJob"):
            kinds.add(doc["kind"])
            assert doc["apiVersion"] == "ray.io/v1", f"{path.name}: apiVersion"
            rv = _ray_cluster_spec(doc).get("rayVersion")
            assert str(rv) == pin, f"{path.name}: rayVersion {rv!r}, pyproject pins ray=={pin}"
    assert kinds == {"RayCluster", "RayJob"}, kinds


def test_dockerfile_base_image_matches_ray_pin_and_python():
    text = DOCKERFILE.read_text()
    froms = re.findall(r"(?im)^\s*FROM\s+(\S+)", text)
    assert len(froms) == 1, f"expected one FROM line, found {froms}"
    m = re.fullmatch(r"rayproject/ray:([0-9][0-9.]*)-py(\d)(\d+)(?:-\S+)?", froms[0])
    assert m, f"FROM {froms[0]!r} is not rayproject/ray:<version>-py<NN>"
    ray_v, py = m.group(1), (int(m.group(2)), int(m.group(3)))
    assert ray_v == _ray_pin(), f"FROM has Ray {ray_v}, pyproject pins ray=={_ray_pin()}"
    assert py == (3, 11), f"FROM has Python {py}, expected 3.11"
    req = _pyproject()["project"]["requires-python"]
    assert re.fullmatch(r">=\s*3\.(\d+)", req) and int(req.split(".")[1]) <= 11, (
        f"requires-python {req!r} does not admit the image's Python 3.11")


def test_dockerfile_installs_the_project():
    text = DOCKERFILE.read_text()
    run = " ".join(re.findall(r"(?ims)^\s*RUN\s+(.*?)(?<!\\)$", text))
    assert re.search(r"pip install --no-cache-dir \.(\s|$)", run), "no `pip install --no-cache-dir .`"
    assert not re.search(r"pip install[^&;]*\s(-e|--editable)\s", run), "editable install"
    workdir = re.findall(r"(?im)^\s*WORKDIR\s+(\S+)", text)
    assert workdir and workdir[-1] == "/opt/netcabal", f"WORKDIR {workdir}"
    assert re.search(r"(?im)^\s*COPY\s+(--\S+\s+)*\.\s+(/opt/netcabal/?|\.)\s*$", text), (
        "the repository (with scenarios/) is not copied to /opt/netcabal")
    labels = re.findall(r'org\.opencontainers\.image\.version="([^"]+)"', text)
    assert labels == [_version()], f"image version label {labels}, expected {_version()}"


def test_readme_names_the_project_image():
    text = (DEPLOY / "README.md").read_text()
    names = set(re.findall(r"netcabal:(\d[\w.+-]*\w)", text))
    assert names == {_version()}, f"README names images {names}, expected netcabal:{_version()}"
    assert f"docker build -f deploy/Dockerfile -t {_image()} ." in text


# -- the command ---------------------------------------------------------------------

def test_console_script_points_to_cli_main():
    scripts = _pyproject()["project"]["scripts"]
    assert scripts.get("netcabal") == "cluster.cli:main", scripts
    mod, func = scripts["netcabal"].split(":")
    assert callable(getattr(importlib.import_module(mod), func, None)), f"{mod} has no {func}"


def test_rayjob_entrypoint_runs_an_existing_scenario(monkeypatch):
    jobs = [(p, d) for p, d in _all_docs() if d.get("kind") == "RayJob"]
    assert jobs, "no RayJob under deploy/"
    for path, doc in jobs:
        ep = doc["spec"]["entrypoint"]
        assert ep.startswith("netcabal run "), f"{path.name}: entrypoint {ep!r}"
        argv = shlex.split(ep)[1:]
        a = _parse_cli(argv, monkeypatch)
        assert a.engine == "ray", f"{path.name}: entrypoint does not use --engine ray"
        scenario = Path(a.scenario)
        assert not scenario.is_absolute() and scenario.parts[0] == "scenarios", (
            f"{path.name}: scenario {a.scenario!r} is not under scenarios/")
        assert (REPO / scenario).is_file(), f"{path.name}: {a.scenario} does not exist"
        assert doc["spec"].get("shutdownAfterJobFinishes") is True


def test_dockerfile_cmd_is_a_valid_netcabal_command(monkeypatch):
    cmds = re.findall(r"(?im)^\s*CMD\s+(\[.*\])\s*$", DOCKERFILE.read_text())
    if not cmds:
        pytest.skip("no exec-form CMD")
    argv = yaml.safe_load(cmds[-1])
    assert argv[0] == "netcabal"
    a = _parse_cli(argv[1:], monkeypatch)
    if getattr(a, "scenario", None):
        assert (REPO / a.scenario).is_file(), f"CMD names a missing scenario {a.scenario}"


# -- token authentication -------------------------------------------------------------

def _auth_before(cmd: str, what: str) -> bool:
    """RAY_AUTH_MODE=token is set in the same shell command, before `what`."""
    i = cmd.find(what)
    m = re.search(r"(?:^|[\s;&(])(?:export\s+)?RAY_AUTH_MODE=token(?=[\s;&)]|$)", cmd[:i])
    return m is not None


def test_launcher_sets_token_auth_for_head_and_workers():
    for path, doc in _all_docs():
        if not _is_launcher(doc):
            continue
        for key, role in (("head_start_ray_commands", "--head"),
                          ("worker_start_ray_commands", "--address")):
            starts = [c for c in doc.get(key) or [] if "ray start" in c]
            assert starts, f"{path.name}: no `ray start` in {key}"
            for c in starts:
                assert role in c, f"{path.name}: {key}: {c!r} lacks {role}"
                assert _auth_before(c, "ray start"), (
                    f"{path.name}: {key}: RAY_AUTH_MODE=token not set for {c!r}")
        head = " ".join(doc["head_start_ray_commands"])
        assert "--port=6379" in head and "--dashboard-host=0.0.0.0" in head


def test_launcher_config_is_valid_for_ray():
    from ray.autoscaler._private.util import prepare_config, validate_config
    for path, doc in _all_docs():
        if _is_launcher(doc):
            validate_config(copy.deepcopy(doc))
            validate_config(prepare_config(copy.deepcopy(doc)))


def test_kuberay_sets_token_auth_on_every_pod():
    checked = 0
    for path, doc in _all_docs():
        if doc.get("kind") not in ("RayCluster", "RayJob"):
            continue
        for role, pod in _pod_templates(doc):
            containers = pod.get("containers") or []
            assert containers, f"{path.name}: {role}: no containers"
            env = {e["name"]: e for e in containers[0].get("env") or []}
            assert env.get("RAY_AUTH_MODE", {}).get("value") == "token", (
                f"{path.name}: {role}: RAY_AUTH_MODE=token not set")
            tok = env.get("RAY_AUTH_TOKEN")
            assert tok and (tok.get("value") or tok.get("valueFrom")), (
                f"{path.name}: {role}: no RAY_AUTH_TOKEN for the shared token")
            checked += 1
    assert checked >= 4, checked
