"""Test-side CloudFormation view of a bulkhead plan, checked with cfn-lint (issue 14)."""
