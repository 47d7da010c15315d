"""Open MPI's mpirun command line for EFA clusters (:mod:`ccdsl.executor.mpirun`), checked as values.  The same
line run by the launcher over SSH is in tests/test_efa_nodes.py."""

from __future__ import annotations

from ccdsl.executor import mpirun
from ccdsl.executor.model import RUNNING, Node


def node(**extra) -> Node:
    return Node(index=0, role="worker", instance_id="i-1", instance_type="hpc7g.4xlarge", state=RUNNING,
                address="10.0.0.1", private_address="10.0.0.1", port=22, user="ubuntu", key_path=None, extra=extra)


def test_mpirun_forces_efa_and_open_mpis_ofi_transport():
    assert mpirun.argv("/opt/amazon/openmpi/bin/mpirun", ["10.0.0.1", "10.0.0.2"], 4, 8, ["python3", "x.py"],
                       agent="/home/u/.ccdsl/H/ssh") == [
        "/opt/amazon/openmpi/bin/mpirun", "--prefix", "/opt/amazon/openmpi", "--host", "10.0.0.1:4,10.0.0.2:4",
        "-n", "8", "--mca", "plm_rsh_agent", "/home/u/.ccdsl/H/ssh", "--mca", "pml", "cm", "--mca", "mtl", "ofi",
        "-x", "FI_PROVIDER=efa", "-x", "MPI4PY_LIBMPI=/opt/amazon/openmpi/lib64:/opt/amazon/openmpi/lib",
        "python3", "x.py"]


def test_extra_arguments_keep_their_place_and_lose_hydra_only_flags():
    line = mpirun.argv("/x/bin/mpirun", ["a"], 1, 1, ["prog"], agent="/s", env={"CCDSL_WORKDIR": "/w"},
                       iface="ens5", extra=("-prepend-rank", "--bind-to", "core"), wdir="/w")
    assert line[line.index("--mca", line.index("ofi")):] == [
        "--mca", "oob_tcp_if_include", "ens5", "-x", "FI_PROVIDER=efa", "-x", "MPI4PY_LIBMPI=/x/lib64:/x/lib",
        "-x", "CCDSL_WORKDIR=/w", "--wdir", "/w", "--bind-to", "core", "prog"]


def test_the_venv_under_mpirun_has_no_mpich():
    assert mpirun.packages(("mpich", "mpi4py", "cloudpickle")) == ("mpi4py", "cloudpickle")
    assert mpirun.packages(("mpich==4.2.1", "MPICH [x]", "mpich-abi", "mpi4py")) == ("mpich-abi", "mpi4py")


def test_mpirun_only_where_every_node_is_of_an_efa_cluster():
    efa = node(fabric="efa")
    assert mpirun.wanted([efa, efa])
    assert not mpirun.wanted([efa, node()]) and not mpirun.wanted([])
