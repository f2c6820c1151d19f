"""The CA of the proxy's inner TLS layer, registered with the tunnel.

Certificates cannot be edited: a new CA (or another tunnel) is a new
certificate, registered before the old one is archived so the proxy is never
without a trusted CA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, Resource

from infra.platform_api.base import PlatformProvider, with_secret_outputs
from infra.platform_api.connection import calling, fail, plain
from infra.platform_api.sdk import anthropic


def _outs(cert: Any) -> dict[str, Any]:
    return {
        "fingerprint": cert.fingerprint,
        "expires_at": cert.expires_at.isoformat() if cert.expires_at else None,
    }


class TunnelCertificateProvider(PlatformProvider):
    kind = "tunnel certificate"
    compared = ("tunnel_id", "ca_certificate_pem", "adopt_id")
    replace_on = compared

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = plain(props)
        certificates = self.client(props).beta.tunnels.certificates
        what = self.what(props)
        with calling(what, "register", hidden=self.hidden(props)):
            if props.get("adopt_id"):
                cert = certificates.retrieve(props["adopt_id"], tunnel_id=props["tunnel_id"])
                if cert.archived_at is not None:
                    fail(f"{what}: cannot adopt {cert.id}, it is archived")
            else:
                cert = certificates.create(
                    props["tunnel_id"], ca_certificate_pem=props["ca_certificate_pem"]
                )
        return CreateResult(self.returned_id(what, cert.id), {**props, **_outs(cert)})

    def observe(
        self, client: anthropic.Anthropic, object_id: str, props: dict[str, Any]
    ) -> dict[str, Any] | None:
        cert = client.beta.tunnels.certificates.retrieve(object_id, tunnel_id=props["tunnel_id"])
        return None if cert.archived_at is not None else _outs(cert)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        props = plain(props)
        self.remove(
            id_,
            props,
            "archive",
            lambda client: client.beta.tunnels.certificates.archive(
                id_, tunnel_id=props["tunnel_id"]
            ),
        )


@dataclass(frozen=True)
class TunnelCertificateArgs:
    connection: pulumi.Input[dict[str, Any]]
    tunnel_id: pulumi.Input[str]
    ca_certificate_pem: pulumi.Input[str]
    adopt_id: str | None = None


class TunnelCertificate(Resource, module="agent-perimeter", name="TunnelCertificate"):
    fingerprint: pulumi.Output[str]
    expires_at: pulumi.Output[str | None]

    def __init__(
        self, name: str, args: TunnelCertificateArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {
            "connection": args.connection,
            "tunnel_id": args.tunnel_id,
            "ca_certificate_pem": args.ca_certificate_pem,
            "adopt_id": args.adopt_id,
            "fingerprint": None,
            "expires_at": None,
        }
        super().__init__(TunnelCertificateProvider(), name, props, with_secret_outputs(opts))
