"""The same contracts from Python: ``python examples/embed_api.py``.

``ccdsl.cluster(**kw)`` builds the contract that the text would give (same checks, same messages), and
``ccdsl.resolve`` answers it like ``ccdsl resolve`` does.
"""

from __future__ import annotations

import ccdsl
from ccdsl.language import atleast, between, format_contract, without_positions

# my_second_cluster_contract of the tutorial, built in code.
gpu = ccdsl.cluster("my_second_cluster_contract", node_count=8, accelerator_count=1,
                    accelerator_architecture="Turing", accelerator_memory=atleast("16G"))
from_text = ccdsl.load("examples/tutorial.ccc")["my_second_cluster_contract"]
assert without_positions(from_text) == gpu
print(format_contract(gpu))

# CPU-heavy: the resolver picks the instance type and the node count together.
batch = ccdsl.cluster("batch", node_count=between(2, 16), cluster_vcpus_count=atleast(256))
print(format_contract(batch))

# Mistakes raise ccdsl.ContractError with the messages the text would get.
try:
    ccdsl.cluster(node_count=between(8, 2), accelerator_architecture="Turign")
except ccdsl.ContractError as e:
    print(e.render())

for contract in (gpu, batch):
    try:
        r = ccdsl.resolve(contract)
        print(f"{contract.name}: {r.instance_type} x {r.node_count}")
    except ccdsl.CcdslError as e:
        print(f"{contract.name}: {e.render()}")
