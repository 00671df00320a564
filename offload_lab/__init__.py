"""offload-lab's controller side: sweep specs, the lab inventory, the sweep loop and its results,
capacity searches and the report, in layered subpackages (docs/architecture.md).

fabfile.py is a thin layer over offload_lab.cli."""
