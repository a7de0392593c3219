"""`bulkhead:deployers` lists roles or users: the policies name them, so a session ARN or the root
user would lock out (or over-admit) the next deploy."""

import pytest

from components.catalogue.model import CatalogueError, load_catalogue

ROLE = "arn:aws:iam::123456789012:role/ci/deployer"


def _raw(deployers):
    return {"platform": "aws", "databases": {"app": {"owner": "app-service"}}, "deployers": deployers}


def test_a_role_is_accepted():
    assert load_catalogue(_raw([ROLE]), "prod", region="eu-west-1").deployers == (ROLE,)


@pytest.mark.parametrize("arn", ["arn:aws:iam::123456789012:root", "arn:aws:sts::123456789012:assumed-role/ci/sess"])
def test_the_root_user_or_a_session_is_refused(arn):
    with pytest.raises(CatalogueError) as excinfo:
        load_catalogue(_raw([ROLE, arn]), "prod", region="eu-west-1")
    assert "bulkhead:deployers" in str(excinfo.value) and "role" in str(excinfo.value)
