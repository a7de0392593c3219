"""A database's bootstrap function in moto, as the deployment leaves it (for `audit` tests)."""

from __future__ import annotations

import functools
import json

from components.postgres import bootstrap_handler
from components.prod import rds_bootstrap
from components.prod.rds_postgres import rds_role_settings


@functools.lru_cache(maxsize=1)
def package() -> bytes:
    return rds_bootstrap.bootstrap_archive().data


def create_bootstrap_function(sess, region: str, name: str, db, out: dict) -> str:
    iam = sess.client("iam", region_name=region)
    role = iam.create_role(RoleName=f"bulkhead-{name}-boot", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    fname = rds_bootstrap.function_name(out["instance_identifier"])
    sess.client("lambda", region_name=region).create_function(
        FunctionName=fname, Runtime=rds_bootstrap.LAMBDA_RUNTIME, Role=role, Handler=rds_bootstrap.HANDLER,
        Timeout=rds_bootstrap.TIMEOUT_SECONDS, MemorySize=rds_bootstrap.MEMORY_MB, Code={"ZipFile": package()},
        Environment={"Variables": bootstrap_handler.function_environment(
            database=name, db_name=db.db_name, role=db.db_name, connection_limit=db.connection_limit,
            settings=rds_role_settings(db), master_secret_arn=out["secret_arn"], auth=db.auth,
            login_secret_arn=out.get("login_secret_arn"))})
    return fname
