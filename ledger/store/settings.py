"""The `ledger_settings` row format: an organization's spending rules, rate versions and the access
billing set (kind 'access': key 'plan' the plan's `Access`, key 'storage' the storage in use), one
row each, (kind, key) -> JSON value; an organization billing never touched has no access rows. The
journal writes rows from a state (`settings_rows`); the state loader and the budget reads turn rows
back into rules (`read_rule`). One home, so neither path depends on the other."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ledger.core import codec
from ledger.core.commands import LotKind
from ledger.core.state import ALL_PRODUCTS, UNRESTRICTED, Access, Alert, Budget, MemberLimits, OrgState, Policy

_ACCESS, _PLAN, _STORAGE = "access", "plan", "storage"


def no_rules() -> dict[str, Any]:
    """OrgState's rule fields, empty, as `read_rule` fills them."""
    return {
        "policies": {},
        "budgets": {},
        "members": {},
        "kind_priorities": {},
        "alerts": {},
        "access": UNRESTRICTED,
        "storage_used_gb": Decimal(0),
    }


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
    elif kind == _ACCESS and key == _PLAN:
        rules["access"] = codec.from_json(Access, value)
    elif kind == _ACCESS and key == _STORAGE:
        rules["storage_used_gb"] = Decimal(value["gigabytes"])
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
    if state.access != UNRESTRICTED:
        rows[(_ACCESS, _PLAN)] = codec.to_json(state.access)
    if state.storage_used_gb:
        rows[(_ACCESS, _STORAGE)] = {"gigabytes": str(state.storage_used_gb)}
    for product, versions in state.rates.items():
        for rate in versions:
            assert rate.effective_at is not None
            rows[("rate", f"{product}@{rate.effective_at.isoformat()}")] = codec.to_json(rate)
    return rows
