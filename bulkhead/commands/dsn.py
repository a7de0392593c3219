"""`dsn`: print a libpq connection string for one database (password included, on purpose,
to stdout only). The string itself comes from bulkhead/connection.py."""

from __future__ import annotations

import os

from bulkhead import PROJECT_DIR
from bulkhead.connection import CA_BUNDLE_URL, DEFAULT_CA_BUNDLE, database_url
from bulkhead.outputs_source import add_arguments, load_outputs


def add_parser(sub) -> None:
    d = sub.add_parser("dsn", help="print a psql connection string for one database (password included)",
                       description="Print a libpq connection URI for one database. On aws it logs in as the "
                                   "service's own role with a fresh IAM token as the password (valid 15 minutes; "
                                   "boto3 generate_db_auth_token), or with --admin as the break-glass master from "
                                   "the database's secret; the URI verifies the server against the RDS CA bundle. On docker "
                                   "it verifies the server with the CA of the database's own container (verify-full), "
                                   "channel binding kept.")
    add_arguments(d)
    d.add_argument("--database", required=True, help="the database's name in the catalogue")
    d.add_argument("--reader", nargs="?", const=1, type=int, metavar="N",
                   help="connect to read replica N (default 1) instead of the primary")
    d.add_argument("--ca-bundle", default=os.environ.get("BULKHEAD_RDS_CA_BUNDLE", DEFAULT_CA_BUNDLE),
                   help=f"RDS CA bundle for sslrootcert (default $BULKHEAD_RDS_CA_BUNDLE or {DEFAULT_CA_BUNDLE}; "
                        f"download: {CA_BUNDLE_URL})")
    d.add_argument("--ca-dir", default=None,
                   help="docker: where to write the database's CA file (its `ca_cert`, <database>-<hash>-ca.pem) that "
                        "the URI's sslrootcert names (default $BULKHEAD_CA_DIR or ~/.cache/bulkhead/ca)")
    d.add_argument("--region", help="AWS region of the database (default: from its host name or its secret's ARN)")
    d.add_argument("--admin", action="store_true",
                   help="aws: the master user from the database's secret (break-glass; warns on stderr)")
    d.set_defaults(func=run)



def run(args) -> int:
    outputs = load_outputs(args.outputs, args.stack, cwd=PROJECT_DIR)
    print(database_url(outputs, args.database, args.stack, admin=args.admin, reader=args.reader,
                       region=args.region, ca_bundle=args.ca_bundle, ca_dir=args.ca_dir))
    return 0
