"""What the ``aws`` provider learns about an instance type, and decides from it: DescribeInstanceTypes' answer (once
per region and type), the image for its architecture (once per region and architecture), EFA, CPU options, the
role's market and placement strategy.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ccdsl.errors import CapacityError, ConfigError, ProviderError
from ccdsl.executor.config import AwsConfig
from ccdsl.executor.model import NodeRequest
from ccdsl.executor.providers.aws_api import Ec2, region_refusal

if TYPE_CHECKING:
    from ccdsl.fabric import Fabric

log = logging.getLogger("ccdsl.executor")


def is_spot(request: NodeRequest, config: AwsConfig) -> bool:
    """Whether the role's nodes are spot.  The deployer settles each role's market (``options["market"]``:
    ManagerWorkers may put only the workers on spot); a bare request has only its spot flag and [aws] spot."""
    market = request.options.get("market")
    return market == "spot" if market else bool(request.spot or config.spot)


def placement_strategy(config: AwsConfig, spot: bool, efa: Fabric) -> str:
    """The role's placement strategy: ``[aws] placement_group``, else ``cluster`` for EFA (its low latency is what
    EFA is for), except for spot roles, which ccdsl cannot launch into a placement group."""
    return config.placement_group or ("cluster" if efa.on and not spot else "")


class TypeFacts:
    """Instance types and images of one provider, asked once and kept (every role of a cluster boots the same AMI)."""

    def __init__(self, ec2: Ec2) -> None:
        self.ec2 = ec2
        self.config = ec2.config
        self.types: dict[tuple[str | None, str], dict[str, Any]] = {}  # (region, type) -> DescribeInstanceTypes
        self.images: dict[tuple[str | None, str], tuple[str, str, int]] = {}  # (region, arch) -> image

    def type_info(self, instance_type: str) -> dict[str, Any]:
        """DescribeInstanceTypes for one type, once per region."""
        key = (self.ec2.region, instance_type)
        if key not in self.types:
            types = self.ec2.call("describe_instance_types", InstanceTypes=[instance_type])["InstanceTypes"]
            if not types:
                raise CapacityError(f"EC2 does not offer {instance_type} in {self.ec2.region}")
            self.types[key] = types[0]
        return self.types[key]

    def image_for(self, instance_type: str) -> tuple[str, str, int, bool]:
        """(AMI id, root device name, root volume GiB, burstable?) for the type's CPU architecture.  The image is
        resolved once per region and architecture, so every role of a cluster boots the same AMI even when the
        SSM parameter moves on during the deploy; it is recorded in the cluster's settings (``images``)."""
        info = self.type_info(instance_type)
        burstable = bool(info.get("BurstablePerformanceSupported", False))
        archs = info["ProcessorInfo"]["SupportedArchitectures"]
        if any(str(a).endswith("_mac") for a in archs):
            raise region_refusal(f"{instance_type} is a Mac instance: it runs only on a Dedicated Host, which "
                                 "ccdsl does not allocate", hint="choose a type that is not *.mac (node_machinetype)",
                                 code="MacInstance")
        arch = "arm64" if "arm64" in archs and "x86_64" not in archs else "x86_64"
        key = (self.ec2.region, arch)
        if key not in self.images:
            self.images[key] = self.resolve_image(arch)
            self.ec2.resources.setdefault("images", {})[f"{self.ec2.region}/{arch}"] = self.images[key][0]
        return (*self.images[key], burstable)

    def resolve_image(self, arch: str) -> tuple[str, str, int]:
        """(AMI id, root device name, root volume GiB) of ``[aws] image.<arch>`` in this region."""
        image = self.config.image[arch]
        if image.startswith("resolve:ssm:"):
            name = image[len("resolve:ssm:"):]
            image = self.ec2.call("get_parameter", service="ssm", Name=name)["Parameter"]["Value"]
        try:
            images = self.ec2.call("describe_images", ImageIds=[image])["Images"]
        except ProviderError as exc:
            if not getattr(exc, "code", "").startswith("InvalidAMIID"):
                raise
            images = []
        if not images:
            raise region_refusal(f"image {image} ([aws] image.{arch}) does not exist in {self.ec2.region}",
                                 hint="an AMI id names an image of one region: choose that region, copy the image "
                                      "there, or use 'resolve:ssm:<parameter>' (the same image in every region)",
                                 code="InvalidAMIID.NotFound")
        root = images[0].get("RootDeviceName", "/dev/xvda")
        sizes = [m["Ebs"].get("VolumeSize", 0) for m in images[0].get("BlockDeviceMappings", [])
                 if m.get("DeviceName") == root and "Ebs" in m]
        return image, root, int(sizes[0]) if sizes and sizes[0] else 8

    def fabric(self, request: NodeRequest) -> Fabric:
        """Whether the role's nodes use EFA, and through how many interfaces (:mod:`ccdsl.fabric` decides, from
        DescribeInstanceTypes' answer, the contract's ``efa`` clause in ``options["efa"]`` and ``[aws] efa`` and
        ``private``)."""
        from ccdsl import fabric

        net = self.type_info(request.instance_type).get("NetworkInfo") or {}
        available = int((net.get("EfaInfo") or {}).get("MaximumEfaInterfaces", 0)) if net.get("EfaSupported") else 0
        asked = request.options.get("efa")
        return fabric.decide(request.instance_type, available, request.count,
                             None if asked is None else bool(asked), self.config.efa, self.config.private)

    def efa_software(self, request: NodeRequest) -> bool:
        """Whether ``request``'s nodes get the EFA software (:mod:`.efa_boot`): they use EFA, or another role of the
        cluster does (the manager, where mpirun runs, needs Open MPI built for it)."""
        return self.fabric(request).on or bool(self.ec2.resources.get("efa_interfaces"))

    def cpu_options(self, request: NodeRequest) -> dict[str, int] | None:
        """CpuOptions for one thread per core (the contract's ``smt => false`` for the role, in
        ``options["smt"]``, else ``[aws] smt = false``), None when nothing is to be sent: SMT on, or a type that runs
        one thread per core already (Graviton, the AMD HPC types).  A type that cannot be changed is refused: bare
        metal takes no CPU options (EC2 UG "CPU options for Amazon EC2 instances"; aws-parallelcluster#1855), and
        a few older types list no ThreadsPerCore = 1."""
        instance_type = request.instance_type
        asked = request.options.get("smt")
        smt = self.config.smt if asked is None else bool(asked)
        if smt:
            return None
        info = self.type_info(instance_type)
        vcpu = info.get("VCpuInfo") or {}
        if int(vcpu.get("DefaultThreadsPerCore", 1)) <= 1:
            return None
        who = "the contract's smt => false" if asked is not None else "[aws] smt = false"
        hint = ("choose another type, or write smt => false in the contract (it resolves only to types that can run "
                "one thread per core), or [aws] smt = true" if asked is None else
                "a resolved contract never names such a type (smt => false keeps them out): choose another type")
        if info.get("BareMetal") or ".metal" in instance_type:
            raise ConfigError(f"{instance_type} is a bare-metal type that runs two threads per core: EC2 takes no "
                              f"CPU options for bare metal, so {who} cannot turn its second threads off", hint=hint)
        if 1 not in vcpu.get("ValidThreadsPerCore", []):
            raise ConfigError(f"EC2 cannot run {instance_type} with one thread per core ({who})", hint=hint)
        return {"CoreCount": int(vcpu["DefaultCores"]), "ThreadsPerCore": 1}

    def check_scratch(self, instance_type: str) -> None:
        """Say when ``[aws] scratch`` finds no disk on ``instance_type``: then the folder is one on the root volume
        (a manager of another type than its workers may well have none)."""
        info = self.type_info(instance_type)
        storage = info.get("InstanceStorageInfo") or {}
        if not info.get("InstanceStorageSupported") or storage.get("NvmeSupport") == "unsupported":
            what = "no instance storage" if not info.get("InstanceStorageSupported") else "no NVMe instance storage"
            log.warning("%s has %s: [aws] scratch = %r is a folder on its root volume", instance_type, what,
                        self.config.scratch)
