"""An example service stack that takes its database from a bulkhead stack.

The service reads the bulkhead stack's `databases` output through a
`pulumi.StackReference` and takes only the databases it owns:

- dev (`platform: docker`): one `docker.Container` that joins only the networks
  of its own databases and gets `<NAME>_DATABASE_URL` (and `DATABASE_URL` when it
  owns exactly one) from the secret `internal_url`, made to verify the server
  (`sslmode=verify-full`) with the CA of its database's own container (the `ca_cert`
  output), uploaded as one file per database under /run/bulkhead-ca;
- prod (`platform: aws`): an IAM task role with exactly its databases' access
  policies attached (rds-db:connect as its own login role, nothing else), an ECS
  task definition that connects as that role with an IAM token (no password
  anywhere: not in config, state or the task's secrets) and verifies the server
  against the RDS CA bundle, and the client security group exported for the
  service's network configuration.
  It runs as a Fargate service in the bulkhead stack's `network` (its subnets, no
  public IP), wearing only its client security group (5432 to its databases, 443
  to the stack's VPC endpoints), with its own log group for the awslogs driver.

A service name that owns no database in the referenced stack is refused.
"""

from __future__ import annotations

import json

import pulumi

PLATFORMS = ("docker", "aws")
TASK_EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
# Where the image keeps the RDS CA bundle; the bulkhead URLs name the same path (sslrootcert).
RDS_CA_BUNDLE = "/etc/ssl/certs/rds-global-bundle.pem"

config = pulumi.Config()
database_stack = config.require("databaseStack")
service = config.require("service")
platform = config.require("platform")
# dev: any registry. prod: ECR in the stack's account and region only: the databases' VPC has no
# route out, and a task reaches ECR through the VPC endpoints and its layers through the S3 gateway
# (docs/prod-stack.md "Consumer start" says how to push it).
image = config.get("image")
if platform not in PLATFORMS:
    raise pulumi.RunError(f"bulkhead-example-service:platform is {platform!r}; use `docker` (dev) or `aws` (prod)")

bulkhead = pulumi.StackReference("bulkhead", stack_name=database_stack)


def own_databases(databases) -> dict:
    """The databases `service` owns; refuse a service that owns none."""
    if not isinstance(databases, dict) or not databases:
        raise pulumi.RunError(
            f"stack {database_stack} exports no `databases`; is it a bulkhead stack that has been deployed (`pulumi up`)?"
        )
    own = {name: db for name, db in sorted(databases.items()) if isinstance(db, dict) and db.get("owner") == service}
    if not own:
        owners = ", ".join(sorted({str(db.get("owner")) for db in databases.values() if isinstance(db, dict)}))
        raise pulumi.RunError(
            f"service {service!r} owns no database in stack {database_stack} (owners there: {owners}); "
            f"set bulkhead-example-service:service to the service this stack deploys, or add a database "
            f"with `owner: {service}` to the bulkhead catalogue"
        )
    wrong = sorted(name for name, db in own.items() if db.get("platform") != platform)
    if wrong:
        raise pulumi.RunError(
            f"database(s) {', '.join(wrong)} of {service} in {database_stack} are not on platform {platform!r}; "
            f"set bulkhead-example-service:platform to match the bulkhead stack"
        )
    return own


own = bulkhead.require_output("databases").apply(own_databases)
# Every resource takes these tags, so none is registered before the service is known to own a database.
service_tags = pulumi.Output.unsecret(own.apply(lambda dbs: {"bulkhead:service": service, "bulkhead:databases": ",".join(dbs)}))


# Where the container finds its databases' CAs (one file per database: a client of database A
# trusts only A's container, never B's): the path `env --internal --ca-mount` prints for compose.
CA_DIR = "/run/bulkhead-ca"


def verified_url(name: str, db: dict) -> str:
    """`internal_url` verifying the server with the CA of the database's own container: the form
    `python -m bulkhead env --internal --ca-mount /run/bulkhead-ca` prints (bulkhead/drivers.py),
    channel binding kept. Outputs without `ca_cert` (older bulkhead) are refused."""
    from urllib.parse import parse_qsl, quote, urlencode, urlsplit

    if not db.get("ca_cert"):
        raise pulumi.RunError(f"databases.{name}.ca_cert is missing from {database_stack}'s outputs: update the "
                              f"bulkhead stack (pulumi up) so the service can verify its database server")
    parts = urlsplit(db["internal_url"])
    query = {k: v for k, v in parse_qsl(parts.query) if k not in ("sslmode", "sslrootcert")}
    query = {"sslmode": "verify-full", "sslrootcert": f"{CA_DIR}/{name}-ca.pem", **query}
    return f"{parts.scheme}://{parts.netloc}{parts.path}?" + urlencode(query, safe="/~.-_", quote_via=quote)


def env_pairs(databases: dict, url_key: str) -> list[tuple[str, str]]:
    """<NAME>_DATABASE_URL per database, plus DATABASE_URL when there is exactly one.

    The rule of the bulkhead stack's `services` output (components/outputs.py), applied
    here to `internal_url` too: `services` carries only the host-side `url`, and a
    container on the database's network needs the internal one."""
    pairs = [(db["env_var"], verified_url(name, db) if url_key == "internal_url" else db[url_key])
             for name, db in databases.items()]
    if len(databases) == 1 and "DATABASE_URL" not in dict(pairs):
        pairs.append(("DATABASE_URL", pairs[0][1]))
    return pairs


if platform == "docker":
    import pulumi_docker as docker

    image = image or "ghcr.io/acme/app-service:1.0.0"

    # Network names are not secret, even though they arrive in a secret map.
    networks = pulumi.Output.unsecret(own.apply(lambda dbs: sorted({db["network"] for db in dbs.values()})))
    envs = pulumi.Output.secret(own.apply(lambda dbs: [f"{k}={v}" for k, v in env_pairs(dbs, "internal_url")]))
    container = docker.Container(
        service,
        name=f"{service}-{pulumi.get_stack()}",
        image=image,
        # Only its own databases' networks; with networks_advanced the provider
        # does not leave the container on Docker's default bridge.
        networks_advanced=networks.apply(lambda names: [{"name": n} for n in names]),
        envs=envs,
        # Each database's CA (public), readable by the image's own user: the file the URL's sslrootcert
        # names. The provider writes uploads into the created container before it starts
        # (kreuzwerker/terraform-provider-docker resource_docker_container_funcs.go, `upload`).
        # (Public: unsecret, as the network names.)
        uploads=pulumi.Output.unsecret(own.apply(lambda dbs: [
            {"file": f"{CA_DIR}/{n}-ca.pem", "content": d["ca_cert"], "permissions": "0444"} for n, d in sorted(dbs.items())])),
        restart="unless-stopped",
        labels=service_tags.apply(lambda tags: [{"label": k, "value": v} for k, v in sorted(tags.items())]),
        opts=pulumi.ResourceOptions(additional_secret_outputs=["envs"]),
    )
    pulumi.export("container_name", container.name)
    pulumi.export("networks", networks)
else:
    import pulumi_aws as aws

    if image is None:
        image = f"{aws.get_caller_identity().account_id}.dkr.ecr.{aws.get_region().region}.amazonaws.com/{service}:1.0.0"
    assume_ecs_tasks = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
    )
    policy_arns = own.apply(lambda dbs: sorted(db["access_policy_arn"] for db in dbs.values()))
    security_groups = own.apply(lambda dbs: sorted({db["security_group_id"] for db in dbs.values()}))

    # The task role: what the service's code uses to sign its IAM database tokens.
    task_role = aws.iam.Role(
        f"{service}-task",
        name_prefix=f"{service}-task-"[:38],
        description=f"{service}: its own databases only",
        assume_role_policy=assume_ecs_tasks,
        tags=service_tags,
    )
    # Exclusive: any other policy attached by hand is removed on the next `pulumi up`.
    aws.iam.RolePolicyAttachmentsExclusive(f"{service}-task-policies", role_name=task_role.name, policy_arns=policy_arns)

    # The execution role: what ECS uses to pull the image and write logs. No database
    # policy: the service holds no database secret (the master secret is break-glass).
    execution_role = aws.iam.Role(
        f"{service}-execution",
        name_prefix=f"{service}-exec-"[:38],
        description=f"ECS agent for {service}: image pull and logs",
        assume_role_policy=assume_ecs_tasks,
        tags=service_tags,
    )
    aws.iam.RolePolicyAttachmentsExclusive(
        f"{service}-execution-policies", role_name=execution_role.name, policy_arns=[TASK_EXECUTION_POLICY]
    )

    def container_definitions(dbs: dict) -> str:
        # The URLs name the service's own role and no password: the code signs an IAM token
        # (15 minutes) with the task role as the password of each new connection (docs/prod-stack.md, "Credentials").
        environment = [{"name": k, "value": v} for k, v in env_pairs(dbs, "url")]
        environment.append({"name": "PGSSLROOTCERT", "value": RDS_CA_BUNDLE})
        if len(dbs) == 1:
            db = next(iter(dbs.values()))
            # libpq reads these directly; only the password (the token) comes from code.
            environment += [
                {"name": "PGHOST", "value": db["host"]},
                {"name": "PGPORT", "value": str(db["port"])},
                {"name": "PGDATABASE", "value": db["db_name"]},
                {"name": "PGUSER", "value": db["username"]},
                {"name": "PGSSLMODE", "value": db["sslmode"]},
            ]
        return json.dumps(
            [
                {
                    "name": service,
                    "image": image,
                    "essential": True,
                    "environment": sorted(environment, key=lambda e: e["name"]),
                    "readonlyRootFilesystem": True,
                }
            ]
        )

    # The awslogs driver ships to CloudWatch Logs through the stack's `logs` endpoint.
    log_group = aws.cloudwatch.LogGroup(
        f"{service}-logs", name=f"/ecs/{service}-{pulumi.get_stack()}", retention_in_days=30, tags=service_tags)
    region = aws.get_region_output().region

    def with_logs(definitions: str, group: str, region_name: str) -> str:
        containers = json.loads(definitions)
        for c in containers:
            c["logConfiguration"] = {"logDriver": "awslogs", "options": {
                "awslogs-group": group, "awslogs-region": region_name, "awslogs-stream-prefix": service}}
        return json.dumps(containers)

    task = aws.ecs.TaskDefinition(
        service,
        family=f"{service}-{pulumi.get_stack()}",
        requires_compatibilities=["FARGATE"],
        network_mode="awsvpc",
        cpu=str(config.get_int("cpu") or 256),
        memory=str(config.get_int("memory") or 512),
        task_role_arn=task_role.arn,
        execution_role_arn=execution_role.arn,
        container_definitions=pulumi.Output.all(own.apply(container_definitions), log_group.name, region).apply(
            lambda a: with_logs(*a)),
        tags=service_tags,
    )
    # Where the databases are: the bulkhead stack's subnets; the task wears its client group only.
    def subnets_of(args) -> list:
        _, network = args  # after own_databases: a wrong platform or service is reported first
        if not isinstance(network, dict) or not network.get("subnet_ids"):
            raise pulumi.RunError(f"stack {database_stack} exports no `network`; run `pulumi up` on it with a bulkhead "
                                  f"version that exports its VPC and subnets")
        return list(network["subnet_ids"])

    subnet_ids = pulumi.Output.unsecret(pulumi.Output.all(own, bulkhead.get_output("network")).apply(subnets_of))
    aws.ecs.Service(
        service,
        cluster=config.get("cluster") or "default",
        task_definition=task.arn,
        desired_count=config.get_int("desiredCount") or 1,
        launch_type="FARGATE",
        network_configuration={"subnets": subnet_ids, "security_groups": security_groups, "assign_public_ip": False},
        tags=service_tags,
    )
    pulumi.export("subnet_ids", subnet_ids)
    pulumi.export("task_definition_arn", task.arn)
    pulumi.export("task_role_arn", task_role.arn)
    # For the ECS service's network_configuration.security_groups: its client group only.
    pulumi.export("security_group_ids", security_groups)

pulumi.export("service", service)
pulumi.export("databases", pulumi.Output.unsecret(own.apply(lambda dbs: sorted(dbs))))
