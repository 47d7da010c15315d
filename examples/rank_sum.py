"""The tutorial's MPI program as a script: every rank says hello, rank 0 prints the sum of the ranks (times N).

    ccdsl run HANDLE -- python examples/rank_sum.py --n 10
    cluster.run_script("examples/rank_sum.py", ["--n", "10"])      # the same from Python

The script is shipped from this machine to the nodes; its arguments reach it untouched on every rank.
"""

import argparse

from mpi4py import MPI

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--n", type=int, default=1, help="multiply each rank by N")
args = parser.parse_args()

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
print(f"I am {rank} among {size} processes")
total = comm.reduce(rank * args.n, root=0)
if rank == 0:
    print(f"sum of the ranks × {args.n}: {total}")
