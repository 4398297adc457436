"""`cluster`: a real 3-node Ray cluster on this machine for the module (cluster/local.py): a head with no
CPUs, where drivers attach, and worker nodes node_a and node_b with 1 CPU and the custom resource of their name
each. One CPU per node steers work without touching the jobs: one shard task, one encoder actor, one Ray Train
worker per node at a time (and the 2 logical CPUs are the machine's 2 cores). Each test starts with both workers
alive: a node a test lost is replaced before the next one. Torn down (every process of every node killed) at the
end, whatever happened, and its folder removed unless a test failed; no other Ray on the machine is touched.
"""
import os
import shutil

import pytest

from cluster.local import FOREIGN, LocalCluster, short_root

WORKERS = {"node_a": 1, "node_b": 1}


def default_address_file() -> str:
    """What /tmp/ray/ray_current_cluster says, the cluster a plain ray.init() joins ('' if none)."""
    from ray._common.utils import get_ray_address_file

    path = get_ray_address_file(None)
    return open(path).read().strip() if os.path.exists(path) else ""


@pytest.fixture(scope="module")
def cluster(request):
    environ_before, joined_before = {k: os.environ.get(k) for k in FOREIGN}, default_address_file()
    failed_before = request.session.testsfailed
    c, up = LocalCluster(short_root()), False
    try:
        c.start(WORKERS)
        assert default_address_file() == joined_before, "ray start pointed plain ray.init() at this cluster"
        up = True
        yield c
    finally:
        left = c.stop()
        if left or not up or request.session.testsfailed > failed_before:
            print(f"\nthe test cluster's logs: {c.root}")  # kept
        else:
            shutil.rmtree(c.root, ignore_errors=True)
    assert not left, f"processes of the test cluster outlived it: {left}"
    assert c.gcs not in default_address_file()
    assert {k: os.environ.get(k) for k in FOREIGN} == environ_before  # no RAY_ADDRESS or token mode leaked


@pytest.fixture(autouse=True)
def both_workers(cluster):
    for name in WORKERS:
        if name not in cluster.nodes:
            cluster.replace(name)
    return cluster
