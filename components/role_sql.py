"""PLACEHOLDER until branch i11's role_sql lands (merged before commit)."""
def apply_service_role(conn, request, master, error):
    raise NotImplementedError
