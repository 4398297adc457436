"""Cluster configs (launcher YAMLs, the KubeRay RayService) and `check.py`, their checker."""
