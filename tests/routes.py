"""Who may call each route, written out here, not imported from stacks/, so that the stacks' tests and the
OpenAPI document's test check the code against the brief."""

from __future__ import annotations

# Signed with SigV4: the retailer's back office, and staff through the console's identity pool.
ADMIN_ROUTES = {
    ("PUT", "/items/{item_id}"),
    ("DELETE", "/users/{user_id}"),
    # the staff's read-only routes (the console's)
    ("GET", "/model"),
    ("GET", "/users/{user_id}/events"),
    ("GET", "/items"),
    ("GET", "/events/stats"),
    ("GET", "/kpis"),
    # the experiments (the console's Experiments view too)
    ("GET", "/experiments"),
    ("PUT", "/experiments/{name}"),
    ("GET", "/experiments/{name}"),
    ("DELETE", "/experiments/{name}"),
    ("GET", "/experiments/{name}/report"),
}
OPEN_ROUTES = {("GET", "/health")}
