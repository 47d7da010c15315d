"""Fixtures and helpers for the executor-core tests (state DB, config, EC2 on moto, fault injection).

Fault injection uses botocore's ``before-send`` event through ``ccdsl.executor.providers.aws.EVENT_HOOKS``: a
handler that returns a response short-circuits the HTTP send but still goes through botocore's retry logic, so an
injected ``Throttling`` error is retried exactly as a real one would be.
"""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

MOTO_IMAGE = "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
MOTO_IMAGE_ARM = "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"


@pytest.fixture()
def data_dir(tmp_path, monkeypatch):
    """A private ccdsl data dir (state DB, keys) and no config file from the environment."""
    d = tmp_path / "data"
    monkeypatch.setenv("CCDSL_DATA_DIR", str(d))
    monkeypatch.delenv("CCDSL_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return d


def aws_settings(url: str, **extra) -> dict:
    """[aws] for the moto server.  ``shared = "none"`` unless a test asks: the namespace hosts run no NFS server (the
    default, "nfs", exports node 0's folder; tests/test_shared_fs.py tests it and "efs")."""
    return {"endpoint_url": url, "ssm_endpoint_url": url, "region": "us-east-1",
            "image": {"x86_64": MOTO_IMAGE, "arm64": MOTO_IMAGE_ARM}, "ssh_cidr": "203.0.113.0/24",
            "poll_interval": 0.05, "wait_timeout": 60.0, "shared": "none", **extra}


@pytest.fixture()
def ec2_config(aws_env, data_dir):
    """A Config pointing at the moto server."""
    from ccdsl.executor.config import Config

    return Config.from_dict({"aws": aws_settings(aws_env)})


@pytest.fixture()
def ec2(aws_env):
    """A plain boto3 EC2 client on the moto server: the tests' independent view of the cloud."""
    import boto3

    return boto3.client("ec2", endpoint_url=aws_env, region_name="us-east-1")


@pytest.fixture()
def hooks(monkeypatch):
    """Register botocore event handlers on every EC2 client the aws provider creates during the test."""
    from ccdsl.executor.providers import aws

    registered: list = list(aws.EVENT_HOOKS)  # the IAM recorder (conftest) first
    monkeypatch.setattr(aws, "EVENT_HOOKS", registered)
    return registered


@pytest.fixture()
def nat_subnet(ec2):
    """A private subnet of a VPC of its own whose route table sends 0.0.0.0/0 to a NAT gateway (and a public
    subnet holding the gateway); removed afterwards."""
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.0.0/24", AvailabilityZone="us-east-1b")["Subnet"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24", AvailabilityZone="us-east-1b")["Subnet"]
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public["SubnetId"], AllocationId=eip)["NatGateway"]["NatGatewayId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    association = ec2.associate_route_table(RouteTableId=table, SubnetId=private["SubnetId"])["AssociationId"]
    try:
        yield private["SubnetId"]
    finally:
        ec2.disassociate_route_table(AssociationId=association)
        ec2.delete_route_table(RouteTableId=table)
        ec2.delete_nat_gateway(NatGatewayId=nat)
        ec2.release_address(AllocationId=eip)
        for s in (public, private):
            ec2.delete_subnet(SubnetId=s["SubnetId"])
        ec2.delete_vpc(VpcId=vpc)


@pytest.fixture()
def ec2_keys_on_hosts(hooks, netns_hosts):
    """What EC2 does for a launched instance: authorize the key pair's public key (here: on the netns hosts).

    Needs ``netns_hosts`` (tests/fixtures_netns.py) imported into the test module as well."""
    import paramiko

    added: list[str] = []

    def install(parsed, **_):
        if "KeyMaterial" in parsed:
            key = paramiko.Ed25519Key.from_private_key(io.StringIO(parsed["KeyMaterial"]))
            # As cloud-init does on EC2: the key pair's name is the comment of the login key's line.
            line = f"{key.get_name()} {key.get_base64()} {parsed['KeyName']}\n"
            with open(netns_hosts.authorized_keys, "a") as f:
                f.write(line)
            added.append(line)

    hooks.append(("after-call.ec2.CreateKeyPair", install))
    yield
    text = netns_hosts.authorized_keys.read_text()
    for line in added:
        text = text.replace(line, "")
    netns_hosts.authorized_keys.write_text(text)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_):
        yield self.body


def ec2_error(code: str, message: str, status: int = 400):
    """An EC2 XML error response, as botocore's ``before-send`` handlers may return it."""
    from botocore.awsrequest import AWSResponse

    body = (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>ccdsl-test</RequestID></Response>").encode()
    return AWSResponse("http://injected", status, {"Content-Type": "text/xml"}, _Raw(body))


# EC2's capacity errors are server errors, HTTP 5xx (API "Error codes for the Amazon EC2 API"): botocore retries
# those unless told not to.
SERVER_ERRORS = frozenset({"InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity",
                           "InsufficientAddressCapacity", "InsufficientReservedInstanceCapacity", "InternalError",
                           "Unavailable"})


def inject(times: int | None, code: str, message: str, *, when=lambda request: True, status: int | None = None):
    """A ``before-send`` handler failing the first ``times`` matching requests (None: every one), with the HTTP
    status EC2 sends for ``code`` (500 for a server error, else 400) unless ``status`` says otherwise.
    ``handler.sent`` counts matching requests, ``handler.failed`` injected failures."""
    status = status if status is not None else 500 if code in SERVER_ERRORS else 400

    def handler(request, **_):
        if not when(request):
            return None
        handler.sent += 1
        if times is None or handler.failed < times:
            handler.failed += 1
            return ec2_error(code, message, status)
        return None

    handler.sent = 0
    handler.failed = 0
    return handler


def request_zone(request) -> str | None:
    """The Placement.AvailabilityZone of a RunInstances request body."""
    from urllib.parse import parse_qs

    body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
    return (parse_qs(body).get("Placement.AvailabilityZone") or [None])[0]


def request_type(request) -> str | None:
    from urllib.parse import parse_qs

    body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
    return (parse_qs(body).get("InstanceType") or [None])[0]


class TextServer:
    """A tiny HTTP server on 127.0.0.1 answering every GET with ``text`` (stands in for checkip)."""

    def __init__(self, text: str) -> None:
        body = text.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def tagged(ec2, handle: str) -> dict[str, list[str]]:
    """Everything in moto still tagged with ``handle`` (terminated instances excluded)."""
    f = [{"Name": "tag:ccdsl:cluster", "Values": [handle]}]
    inst = [i["InstanceId"] for r in ec2.describe_instances(Filters=f)["Reservations"] for i in r["Instances"]
            if i["State"]["Name"] != "terminated"]
    sgs = [g["GroupId"] for g in ec2.describe_security_groups(Filters=f)["SecurityGroups"]]
    keys = [k["KeyName"] for k in ec2.describe_key_pairs(Filters=f)["KeyPairs"]]
    vols = [v["VolumeId"] for v in ec2.describe_volumes(Filters=f)["Volumes"] if v["State"] != "deleted"]
    return {k: v for k, v in {"instances": inst, "security_groups": sgs, "key_pairs": keys,
                              "volumes": vols}.items() if v}
