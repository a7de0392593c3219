"""RdsProxy: an RDS Proxy in front of one database's primary (`proxy: true`), for services with
many short connections (serverless, PHP, Prisma).

Auth is IAM end to end (RDS User Guide, "Configuring IAM authentication for RDS Proxy" and
"Connecting to a database through RDS Proxy": "You can also use end-to-end IAM authentication,
which connects to your database through the proxy using IAM without requiring database
credentials"; DBProxy `DefaultAuthScheme`: "When set to IAM_AUTH, the proxy uses end-to-end IAM
authentication to connect to the database", RDS API reference / SDK model). The service signs an
IAM token for the proxy's endpoint as it does for the instance (its access policy grants
`rds-db:connect` on the proxy's `prx-` resource id), and the proxy logs in to the database as the
same login role with its own role's `rds-db:connect`: no secret is read by anyone, so the login
role stays a member of `rds_iam` with no password, as bulkhead creates it. The other mode
(`auth` blocks, `auth_scheme = "SECRETS"`) has the proxy read the role's password from Secrets
Manager; bulkhead's `auth: iam` roles have none, so `proxy: true` needs `auth: iam` (the
catalogue refuses it with `auth: password`).

Network: the proxy has its own security group; it admits only the owner's client group on 5432,
and the database's group admits the proxy's group (RDS User Guide, "Setting up network
prerequisites for RDS Proxy": the proxy's group needs outbound to the database, the database's
group inbound from the proxy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

from components.prod.context import AwsContext
from components.prod.naming import aws_name
from components.tags import TAG_ROLE

PORT = 5432


@dataclass
class RdsProxyArgs:
    context: AwsContext
    owner: str
    role: str  # the service's login role inside the database, the user the proxy connects as
    primary: aws.rds.Instance
    database_security_group_id: pulumi.Input[str]
    client_security_group_id: pulumi.Input[str]
    tags: dict


def proxy_role_policy(partition: str, region: str, account: str, resource_id: str, user: str) -> dict:
    """What the proxy's role may do: connect to this instance as this one user (end-to-end IAM;
    RDS User Guide "Configuring IAM authentication for RDS Proxy", the `rds-db:connect` statement
    of the proxy role's policy)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "ConnectAsServiceRole", "Effect": "Allow", "Action": "rds-db:connect",
                       "Resource": f"arn:{partition}:rds-db:{region}:{account}:dbuser:{resource_id}/{user}"}],
    }


def proxy_trust_policy(partition: str, region: str, account: str) -> dict:
    """Who may assume the proxy's role: RDS, for a proxy of this account and region only.

    RDS Proxy assumes its role as rds.amazonaws.com (RDS User Guide, "Configuring IAM authentication for
    RDS Proxy"; aws_db_proxy `role_arn`). The RDS guide's "Preventing cross-service confused deputy
    problems" recommends aws:SourceArn and aws:SourceAccount in the policies of what RDS uses, with an RDS
    ARN as SourceArn; the proxy's own ARN (db-proxy:prx-...) does not exist before the proxy, so the
    account's and region's db-proxy ARNs are named (ArnLike db-proxy:*). No RDS Proxy page shows a trust
    policy with these keys or says that RDS sends them when it assumes a proxy's role, and a plain
    ArnLike/StringEquals on an absent key denies (IAM User Guide, "Condition operators"): the proxy could
    then never log in to its database. So the ...IfExists forms: a request that carries another account's
    or another resource type's source is refused, one that carries none is still admitted. Review when
    AWS documents what RDS Proxy sends (docs/prod-stack.md, "RDS Proxy")."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "RdsProxyOfThisAccountAndRegion",
        "Effect": "Allow",
        "Principal": {"Service": "rds.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {
            "StringEqualsIfExists": {"aws:SourceAccount": account},
            "ArnLikeIfExists": {"aws:SourceArn": f"arn:{partition}:rds:{region}:{account}:db-proxy:*"},
        },
    }]}


def proxy_resource_id(proxy_arn: str) -> str:
    """arn:aws:rds:<region>:<account>:db-proxy:prx-0123... -> prx-0123... (the id `rds-db:connect`
    names for a proxy: RDS User Guide, "Connecting to a proxy using IAM authentication")."""
    return proxy_arn.rsplit(":", 1)[-1]


class RdsProxy(pulumi.ComponentResource):
    endpoint: pulumi.Output
    arn: pulumi.Output
    security_group_id: pulumi.Output

    def __init__(self, name: str, args: RdsProxyArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bulkhead:index:RdsProxy", name, None, opts)
        c = args.context
        tags = {**args.tags, TAG_ROLE: "proxy"}
        child = pulumi.ResourceOptions(parent=self)
        group = aws.ec2.SecurityGroup(
            f"{name}-proxy",
            name_prefix=aws_name("bulkhead", c.stack, name, "proxy") + "-",
            description=f"RDS Proxy of database {name}: admits only the client group of {args.owner}",
            vpc_id=c.network.vpc_id,
            revoke_rules_on_delete=True,
            tags={**tags, "Name": f"{name}-proxy"},
            opts=child,
        )
        # Separate rule resources, as for the database group (rds_postgres.py): drift shows.
        rules = [
            ("proxy-from-owner", group.id, args.client_security_group_id, aws.vpc.SecurityGroupIngressRule,
             f"PostgreSQL from {args.owner} only"),
            ("owner-to-proxy", args.client_security_group_id, group.id, aws.vpc.SecurityGroupEgressRule,
             f"{args.owner} to the proxy of {name}"),
            ("db-from-proxy", args.database_security_group_id, group.id, aws.vpc.SecurityGroupIngressRule,
             f"PostgreSQL from the proxy of {name}"),
            ("proxy-to-db", group.id, args.database_security_group_id, aws.vpc.SecurityGroupEgressRule,
             f"proxy of {name} to its database"),
        ]
        for suffix, group_id, peer, kind, description in rules:
            kind(f"{name}-{suffix}", security_group_id=group_id, referenced_security_group_id=peer,
                 ip_protocol="tcp", from_port=PORT, to_port=PORT, description=description,
                 tags=tags, opts=child)
        role = aws.iam.Role(
            f"{name}-proxy",
            name_prefix=aws_name("bulkhead", c.stack, name, "proxy", max_length=37) + "-",
            description=f"RDS Proxy of database {name}: connects as {args.role} only",
            assume_role_policy=pulumi.Output.all(c.partition, c.region, c.account).apply(
                lambda v: json.dumps(proxy_trust_policy(v[0], v[1], v[2]))),
            tags=tags,
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-proxy-connect",
            # A fixed name (unique within the role): without one the provider generates
            # `terraform-...` (aws_iam_role_policy `name`), and CloudFormation requires PolicyName.
            name="connect-as-login-role",
            role=role.id,
            policy=pulumi.Output.all(c.partition, c.region, c.account, args.primary.resource_id).apply(
                lambda v: json.dumps(proxy_role_policy(v[0], v[1], v[2], v[3], args.role))),
            opts=child,
        )
        proxy = aws.rds.Proxy(
            f"{name}-proxy",
            # 1-63 letters, digits, hyphens (CreateDBProxy DBProxyName); stable: stack and name only.
            name=aws_name(c.stack, name, "proxy", max_length=60),
            # aws_db_proxy engine_family: MYSQL | POSTGRESQL | SQLSERVER (terraform-provider-aws
            # internal/service/rds/proxy.go, enum of types.EngineFamily).
            engine_family="POSTGRESQL",
            # IAM_AUTH: end-to-end IAM, no `auth` blocks (the provider requires them only when
            # default_auth_scheme is NONE or unset: pulumi_aws rds.Proxy `auths`).
            default_auth_scheme="IAM_AUTH",
            # Clients must use TLS to the proxy (CreateDBProxy RequireTLS); IAM auth needs it anyway.
            require_tls=True,
            role_arn=role.arn,
            vpc_security_group_ids=[group.id],
            vpc_subnet_ids=c.network.subnet_ids,
            debug_logging=False,  # it would log statement text, literals included
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        target_group = aws.rds.ProxyDefaultTargetGroup(
            f"{name}-proxy-targets",
            db_proxy_name=proxy.name,
            # At most the database's own connection budget: RDS Proxy's default is 100% of
            # max_connections; the login role's connection_limit still caps the service.
            connection_pool_config={"max_connections_percent": 90, "max_idle_connections_percent": 50},
            opts=child,
        )
        aws.rds.ProxyTarget(
            f"{name}-proxy-target",
            db_proxy_name=proxy.name,
            target_group_name=target_group.name,
            db_instance_identifier=args.primary.identifier,
            opts=child,
        )
        self.endpoint = proxy.endpoint
        self.arn = proxy.arn
        self.security_group_id = group.id
        self.register_outputs({"endpoint": self.endpoint, "arn": self.arn})
