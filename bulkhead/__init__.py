"""bulkhead operator CLI: plan, check, audit, env, dsn (docs/contract.md section 6)."""

import os

# The Pulumi project this CLI operates on: the repository root by default.
PROJECT_DIR = os.environ.get("BULKHEAD_PROJECT_DIR") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
