"""The columns of the instance catalog: one row per (provider, region, instance type) that is offered.

Every part of ccdsl reads the catalog through these names.  Units: memory and storage in GiB (MiB / 1024),
network in Gbit/s (the peak of an "Up to N Gigabit" rating), clock in GHz, price in USD per hour (on-demand
Linux; NaN when no source prices an offered pair, never 0).  Strings are "" when a fact does not apply (no
accelerator) and numbers are 0 for counts that do not apply; NaN means "unknown" — except in ``max_nodes``,
where NaN means "unlimited": a cluster is one row × a node count, and the resolver caps the count at the row's
``max_nodes`` (an on-premise host exists once).
"""

from __future__ import annotations

# (name, dtype, meaning)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("provider", "string", "aws | local | ssh | ... (taxonomy provider label)"),
    ("region", "string", "region name, e.g. us-east-1"),
    ("instance_type", "string", "provider's type name, e.g. g4dn.xlarge; for ssh/local hosts the host name"),
    ("family", "string", "type family, e.g. g4dn"),
    ("vcpus", "int64", "virtual CPUs"),
    ("cores", "int64", "physical cores"),
    ("single_thread", "bool", "can run one thread per core (smt => false): it does by default (DefaultThreadsPerCore "
                              "1: Graviton, the AMD HPC types), or a launch may turn the second thread off "
                              "(ValidThreadsPerCore lists 1; never on bare metal, which takes no CPU options)"),
    ("memory_gib", "float64", "main memory, GiB"),
    ("cpu_manufacturer", "string", "Intel | AMD | AWS | Apple (taxonomy processor manufacturer label)"),
    ("cpu_model", "string", "processor model, e.g. Intel Xeon Platinum 8375C; '' if unknown"),
    ("cpu_microarchitecture", "string", "taxonomy label, e.g. Ice Lake, Zen 4, Graviton3; '' if unknown"),
    ("cpu_architecture", "string", "x86_64 | arm64"),
    ("clock_ghz", "float64", "sustained clock speed, GHz (NaN if unknown)"),
    ("accelerator_count", "int64", "accelerators per node (GPUs, Neuron devices, FPGAs, inference chips)"),
    ("accelerator_type", "string", "GPU | NPU | FPGA | ''"),
    ("accelerator_manufacturer", "string", "taxonomy label, e.g. NVIDIA; '' if none"),
    ("accelerator_model", "string", "taxonomy label, e.g. T4, L40S, Trainium2; '' if none"),
    ("accelerator_architecture", "string", "taxonomy label, e.g. Turing, Ada Lovelace; '' if none"),
    ("accelerator_memory_gib", "float64", "memory per accelerator as its maker sells it, GiB (24 for an L4; 0 if "
                                          "none): what accelerator_memory compares (taxonomy.ACCELERATOR_MEMORY)"),
    ("accelerator_memory_usable_gib", "float64", "memory per accelerator as EC2 reports it, usable, GiB (22.35 for an "
                                                 "L4; 0 if none)"),
    ("accelerator_memory_total_gib", "float64", "accelerator_count * accelerator_memory_gib"),
    ("network_performance", "string", "the provider's rating, e.g. 'Up to 25 Gigabit'"),
    ("network_gbps", "float64", "peak network bandwidth, Gbit/s"),
    ("efa", "bool", "Elastic Fabric Adapter supported"),
    ("efa_interfaces", "int64", "EFA interfaces an instance may have (EfaInfo.MaximumEfaInterfaces; 32 on a "
                                "p5.48xlarge, 1 on most EFA types, 0 without EFA)"),
    ("network_cards", "int64", "network cards (MaximumNetworkCards): one ENA interface uses one card's bandwidth "
                               "(100 of a p5.48xlarge's 3,200 Gbit/s)"),
    ("storage_type", "string", "ssd | hdd | ebs (no instance storage)"),
    ("storage_gib", "float64", "local instance storage, GiB (0 if none)"),
    ("spot", "bool", "spot usage class supported"),
    ("burstable", "bool", "burstable performance (T family, t1.micro included; ccdsl.burstable)"),
    ("bare_metal", "bool", "bare-metal instance"),
    ("price_per_hour", "float64", "on-demand Linux price, USD per hour (NaN = unknown: the row is offered but no "
                                  "source prices it; it competes only when no priced row fits)"),
    ("price_source", "string", "where the price comes from: karpenter@<commit>, libcloud-<version>, "
                               "aws-price-list@<version>, aws-api, user, local; '' when the price is unknown"),
    ("price_date", "string", "ISO date the price was published or generated; '' when unknown"),
    ("spot_price_per_hour", "float64", "latest Linux spot price, USD per hour: the cheapest zone's (NaN if unknown)"),
    ("spot_zone", "string", "the zone of spot_price_per_hour, e.g. us-east-1b; '' when unknown or when the source "
                            "prices the region as a whole (the public spot feed)"),
    ("spot_zones", "string", "every zone's spot price, cheapest first: 'us-east-1b=0.0419 us-east-1a=0.045' (deploy "
                             "tries the zones in this order); '' when unknown"),
    ("spot_price_source", "string", "where the spot price comes from: aws-api (DescribeSpotPriceHistory), "
                                    "aws-spot-feed (the public spot.json feed), user; '' when unknown"),
    ("spot_price_date", "string", "ISO 8601 UTC time of the spot price (the history's timestamp, or when the feed "
                                  "was fetched); '' when unknown.  Spot prices move: a dated snapshot"),
    ("spot_interruption", "float64", "upper bound of the spot advisor's monthly interruption-rate bucket, as a "
                                     "fraction: 0.05 (<5%), 0.1, 0.15, 0.2, 1.0 (>20%); NaN if unknown"),
    ("max_nodes", "float64", "how many nodes of this row exist: NaN = unlimited (cloud types, this machine); an SSH "
                             "host row is 1 unless it names a host class with more hosts"),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c[0] for c in COLUMNS)

# A row's spot columns when no spot price is known (every shipped row: no licensed offline source of spot prices).
NO_SPOT: dict[str, object] = {"spot_price_per_hour": float("nan"), "spot_zone": "", "spot_zones": "",
                              "spot_price_source": "", "spot_price_date": "", "spot_interruption": float("nan")}
# The spot columns (besides ``spot``, the type's support): the price's and the interruption bucket.
SPOT_COLUMNS: tuple[str, ...] = tuple(NO_SPOT)
# What one spot price is: the columns a refresh replaces together (the interruption bucket has its own source).
SPOT_PRICE_COLUMNS: tuple[str, ...] = tuple(c for c in SPOT_COLUMNS if c != "spot_interruption")
DTYPES: dict[str, str] = {c[0]: c[1] for c in COLUMNS}
