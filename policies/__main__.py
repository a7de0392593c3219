"""The bulkhead policy pack: `pulumi preview --policy-pack policies`.

Only builds the PolicyPack; the rules live in bulkhead_policies/ so that
`python -m bulkhead check` can run the very same rules offline.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from bulkhead_policies import ALL_POLICIES, PACK_NAME  # noqa: E402

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=ALL_POLICIES,
    description="bulkhead: every service's PostgreSQL isolated, encrypted and safe from loss.",
)
