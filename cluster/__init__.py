"""Cluster configs (launcher YAMLs, the KubeRay RayService) and `check.py`, their checker; `local.py`, a real
multi-node Ray cluster on this machine (tests/multinode/, `python jobs/chaos.py --nodes`)."""
