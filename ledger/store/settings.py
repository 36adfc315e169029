"""The `ledger_settings` row format: an organization's spending rules and rate versions, one row
each, (kind, key) -> JSON value. The journal writes rows from a state (`settings_rows`); the state
loader and the budget reads turn rows back into rules (`read_rule`). One home, so neither path
depends on the other."""

from __future__ import annotations

from typing import Any

from ledger.core import codec
from ledger.core.commands import LotKind
from ledger.core.state import ALL_PRODUCTS, Alert, Budget, MemberLimits, OrgState, Policy


def no_rules() -> dict[str, Any]:
    """OrgState's rule fields, empty, as `read_rule` fills them."""
    return {"policies": {}, "budgets": {}, "members": {}, "kind_priorities": {}, "alerts": {}}


def read_rule(rules: dict[str, Any], kind: str, key: str, value: Any) -> bool:
    """Put one `ledger_settings` row of a spending rule into `rules`; False for any other (a rate)."""
    if kind == "policy":
        rules["policies"][key] = codec.from_json(Policy, value)
    elif kind == "budget":
        budget = codec.from_json(Budget, value)
        rules["budgets"][budget.team_id] = budget
    elif kind == "member":
        rules["members"][key] = codec.from_json(MemberLimits, value)
    elif kind == "priority":
        rules["kind_priorities"][LotKind(key)] = int(value)
    elif kind == "alert":
        alert = codec.from_json(Alert, value)
        rules["alerts"][alert.id] = alert
    else:
        return False
    return True


def settings_rows(state: OrgState) -> dict[tuple[str, str], Any]:
    """The state's rules and rates as `ledger_settings` rows: (kind, key) -> JSON value."""
    rows: dict[tuple[str, str], Any] = {}
    for product, policy in state.policies.items():
        rows[("policy", product or ALL_PRODUCTS)] = codec.to_json(policy)
    for team_id, budget in state.budgets.items():
        rows[("budget", str(team_id))] = codec.to_json(budget)
    for user_id, limits in state.members.items():
        rows[("member", user_id)] = codec.to_json(limits)
    for lot_kind, priority in state.kind_priorities.items():
        rows[("priority", lot_kind.value)] = priority
    for alert_id, alert in state.alerts.items():
        rows[("alert", str(alert_id))] = codec.to_json(alert)
    for product, versions in state.rates.items():
        for rate in versions:
            assert rate.effective_at is not None
            rows[("rate", f"{product}@{rate.effective_at.isoformat()}")] = codec.to_json(rate)
    return rows
