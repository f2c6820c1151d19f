"""TLS from the tunnel's proxy to each MCP server: a CA, a serving certificate per server.

The proxy trusts only this CA (a ConfigMap with its public certificate); each server
serves its own certificate from a `kubernetes.io/tls` Secret that only it reads. The
CA's key stays in the Pulumi state and never reaches the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import pulumi

from infra.certificates.authority import CertificateAuthority, CertificateAuthorityArgs
from infra.certificates.serving import ServingCertificate, ServingCertificateArgs
from infra.engine.credentials import credential_secret
from infra.engine.kubernetes_object import KubernetesObject, object_meta
from infra.pure.config import as_secret
from infra.pure.naming import (
    COMPONENT_SERVING_CERTIFICATE,
    COMPONENT_UPSTREAM_CA,
    CREDENTIAL_SERVING_TLS,
    LABEL_MCP_SERVER,
    Placement,
    certificate_sha256,
    common_labels,
    issued_name,
    mcp_release,
)

CA_KEY = "ca.crt"


@dataclass(frozen=True)
class UpstreamTlsArgs:
    namespace: str
    environment: str
    # server name -> (Secret base name, DNS names its certificate is valid for)
    servers: dict[str, tuple[str, list[str]]]
    validity_hours: int
    renew_within_hours: int
    ca_config_map: str  # base name of the ConfigMap holding the CA certificate
    # The CA lives longer than what it signs, so renewing a server's certificate never needs
    # a new CA (which every server and the proxy would then have to pick up together).
    ca_validity_hours: int | None = None

    def __post_init__(self) -> None:
        shortest = min(self.validity_hours, self.ca_validity_hours or self.validity_hours)
        if not 0 < self.renew_within_hours < shortest:
            raise ValueError(
                f"renew_within_hours ({self.renew_within_hours}) must be between 1 and "
                f"the shortest validity ({shortest}) - 1"
            )


class UpstreamTls(pulumi.ComponentResource):
    """Renewal is a replacement found by `pulumi up`: see `infra.certificates.base`."""

    ca_cert_pem: pulumi.Output[str]
    ca_sha256: pulumi.Output[str]
    cert_sha256: dict[str, pulumi.Output[str]]
    # Names carry the certificate's digest (`issued_name`): a renewal is a new object.
    server_secrets: dict[str, pulumi.Output[str]]
    ca_config_map: pulumi.Output[str]

    def __init__(
        self, name: str, args: UpstreamTlsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-perimeter:index:UpstreamTls", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        hours = {"validity_hours": args.validity_hours}
        renew = {"renew_within_hours": args.renew_within_hours}
        ca = CertificateAuthority(
            f"{name}-ca",
            CertificateAuthorityArgs(
                common_name=f"agent-perimeter {args.environment} upstream CA",
                validity_hours=args.ca_validity_hours or args.validity_hours,
                **renew,
            ),
            opts=child,
        )
        self.ca_cert_pem = ca.cert_pem
        self.ca_sha256 = ca.cert_pem.apply(certificate_sha256)
        ca_key = as_secret(ca.key_pem)

        self.cert_sha256 = {}
        self.server_secrets = {}
        for server, (secret_base, dns_names) in args.servers.items():
            cert = ServingCertificate(
                f"{name}-{server}",
                ServingCertificateArgs(
                    ca_cert_pem=ca.cert_pem,
                    ca_key_pem=ca_key,
                    dns_names=dns_names,
                    **hours,
                    **renew,
                ),
                opts=child,
            )
            secret_name = cert.cert_pem.apply(partial(issued_name, secret_base))
            credential_secret(
                f"{name}-{server}-secret",
                placement=Placement(args.namespace, args.environment),
                name=secret_name,
                credential=CREDENTIAL_SERVING_TLS,
                reader=mcp_release(server),
                data={"tls.crt": cert.cert_pem, "tls.key": cert.key_pem},
                secret_type="kubernetes.io/tls",
                component=COMPONENT_SERVING_CERTIFICATE,
                labels={LABEL_MCP_SERVER: server},
                opts=child,
            )
            self.cert_sha256[server] = cert.cert_pem.apply(certificate_sha256)
            self.server_secrets[server] = secret_name

        self.ca_config_map = ca.cert_pem.apply(partial(issued_name, args.ca_config_map))
        KubernetesObject(
            f"{name}-ca-config-map",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": object_meta(
                    self.ca_config_map,
                    args.namespace,
                    common_labels(COMPONENT_UPSTREAM_CA, args.ca_config_map, args.environment),
                ),
                "data": {CA_KEY: ca.cert_pem},
            },
            opts=child,
        )
        self.register_outputs(
            {
                "ca_cert_pem": self.ca_cert_pem,
                "cert_sha256": self.cert_sha256,
                "server_secrets": self.server_secrets,
                "ca_config_map": self.ca_config_map,
            }
        )
