"""Live subscriptions end to end, over a real WebSocket against the running service and worker:
team and user meters, the usage stream (resumable from a cursor), alerts (seed 003's "almost out",
"depleted" and a user's spend alert), access checked again while a subscription runs, and delivery
across API processes."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import uvicorn

from graphql_api.access.tokens import issue_token, token_secret
from graphql_api.app import create_app
from ledger import constants
from ledger.constants import subscriptions_per_connection_max
from ledger.directory.api_keys import create_api_key
from ledger.directory.members import put_member
from ledger.directory.roles import Role
from tests.conftest import Service, _free_port
from tests.ledger_api import Ledger
from tests.live import Live

TEAM_METER = """subscription($org: ID!, $team: ID!) { teamCreditMeter(organizationId: $org, teamId: $team) {
  teamId total held available free budget { amount spent remaining period } } }"""
USER_METER = """subscription($org: ID!, $user: String!) { userCreditMeter(organizationId: $org, userId: $user) {
  userId teamId available sharedCredits cap { amount spent remaining } teamBudget { remaining } } }"""
USAGE_EVENTS = """subscription($org: ID!, $user: String, $after: String) {
  usageEvents(organizationId: $org, userId: $user, after: $after) {
    cursor transactionId product quantity credits teamId userId model occurredAt journaledAt } }"""
ALERT_EVENTS = """subscription($org: ID!, $after: String) { alertEvents(organizationId: $org, after: $after) {
  cursor alertId transactionId state kind name threshold value userId } }"""
ORG_METER = "subscription($org: ID!) { creditMeter(organizationId: $org) { total available } }"


async def test_a_team_meter_follows_the_teams_own_credits_and_budget(service: Service) -> None:
    org = await Ledger.create(service, "Team meters")
    team = await org.team("Research")
    await org.accepted("grantCredits", amount="100")
    async with Live.open(service) as live:
        await live.subscribe(TEAM_METER, org=org.org, team=team)
        first = await live.next("teamCreditMeter")
        assert (first["teamId"], first["total"], first["free"], first["budget"]) == (team, "0", "0", None)
        await org.accepted("transferCredits", amount="50", toTeamId=team)
        assert (await live.next("teamCreditMeter"))["total"] == "50"
        await org.accepted("setTeamBudget", teamId=team, amount="20")
        reading = await live.next("teamCreditMeter")
        assert reading["budget"] == {"amount": "20", "spent": "0", "remaining": "20", "period": "MONTH"}
        await org.accepted("recordUsage", product="sms.message", quantity="5", teamId=team)
        reading = await live.next("teamCreditMeter")
        assert (reading["total"], reading["budget"]["spent"], reading["budget"]["remaining"]) == ("45", "5", "15")
        # The pool's usage moves nothing of the team's: no reading.
        await org.accepted("recordUsage", product="sms.message", quantity="5")
        await live.quiet()
        hold = await org.accepted(
            "placeHold", amount="30", teamId=team, expiresAt=datetime.now(UTC) + timedelta(hours=1)
        )
        reading = await live.next("teamCreditMeter")
        # 30 held for the team: its 45 fenced first, none of it free.
        assert (reading["total"], reading["held"], reading["available"], reading["free"]) == ("45", "30", "15", "15")
        await org.accepted("releaseHold", holdId=hold["holdId"])
        assert (await live.next("teamCreditMeter"))["free"] == "45"


async def test_a_user_meter_shows_what_the_user_may_spend_now(service: Service, pool: asyncpg.Pool) -> None:
    org = await Ledger.create(service, "User meters")
    team = await org.team("Support")
    await put_member(pool, uuid.UUID(org.org), "ana", Role.CREATOR, team_id=uuid.UUID(team))
    await org.accepted("grantCredits", amount="100")
    await org.accepted("transferCredits", amount="30", toTeamId=team)
    async with Live.open(service) as live:
        await live.subscribe(USER_METER, org=org.org, user="ana")
        first = await live.next("userCreditMeter")
        assert first == {
            "userId": "ana", "teamId": team, "available": "100", "sharedCredits": True, "cap": None, "teamBudget": None,
        }  # fmt: skip
        await org.accepted("setMemberLimits", userId="ana", cap="40")
        reading = await live.next("userCreditMeter")
        assert (reading["available"], reading["cap"]) == ("40", {"amount": "40", "spent": "0", "remaining": "40"})
        await org.accepted("recordUsage", product="sms.message", quantity="15", teamId=team, userId="ana")
        reading = await live.next("userCreditMeter")
        assert (reading["available"], reading["cap"]["spent"]) == ("25", "15")
        # Someone else spends most of the pool: the pool and the team now leave less than the cap.
        await org.accepted("recordUsage", product="sms.message", quantity="65")
        assert (await live.next("userCreditMeter"))["available"] == "20"
        await org.accepted("setMemberLimits", userId="ana", cap="40", sharedCredits=False)
        reading = await live.next("userCreditMeter")
        assert (reading["available"], reading["sharedCredits"]) == ("15", False)


async def test_a_user_meter_follows_the_user_to_another_team(
    service: Service, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(constants, "access_recheck_s", 0.3)
    org = await Ledger.create(service, "Moves")
    first, second = await org.team("First"), await org.team("Second")
    await org.accepted("adjustCredits", amount="7", reason="seed", teamId=second)
    await put_member(pool, uuid.UUID(org.org), "ana", Role.CREATOR, team_id=uuid.UUID(first))
    async with Live.open(service) as live:
        await live.subscribe(USER_METER, org=org.org, user="ana")
        assert ((reading := await live.next("userCreditMeter"))["teamId"], reading["available"]) == (first, "0")
        moved = await service.graphql(
            "mutation($input: UpdateMemberInput!) { updateMember(input: $input) { teamId } }",
            input={"organizationId": org.org, "userId": "ana", "teamId": second},
        )
        assert "errors" not in moved, moved
        reading = await live.next("userCreditMeter")
        assert (reading["teamId"], reading["available"]) == (second, "7")


async def test_the_usage_stream_sends_each_applied_debit(service: Service) -> None:
    org = await Ledger.create(service, "Usage stream")
    await org.accepted("grantCredits", amount="1000")
    async with Live.open(service) as live, Live.open(service) as everything:
        await live.subscribe(USAGE_EVENTS, org=org.org, user="ana")
        await everything.subscribe(USAGE_EVENTS, org=org.org)
        await asyncio.sleep(0.2)  # both are listening
        used = await org.accepted(
            "recordUsage", product="gpt-4o.input-tokens", quantity="1500", userId="ana",
            dimensions=[{"name": "model", "value": "gpt-4o"}],
        )  # fmt: skip
        await org.accepted("recordUsage", product="sms.message", quantity="2", userId="bo")
        await org.rejected("recordUsage", "INSUFFICIENT_CREDITS", product="sms.message", quantity="5000")
        event = await live.next("usageEvents")
        assert event["transactionId"] == used["transactionId"]
        assert (event["product"], event["quantity"], event["credits"], event["model"]) == (
            "gpt-4o.input-tokens", "1500", "1.5", "gpt-4o",
        )  # fmt: skip
        await live.quiet()  # bo's usage is filtered out, the rejection is no debit
        seen = [await everything.next("usageEvents") for _ in range(2)]
        assert [event["product"] for event in seen] == ["gpt-4o.input-tokens", "sms.message"]
        await everything.quiet()
    # A client that lost its connection resumes from the last cursor it saw and misses nothing.
    await org.accepted("recordUsage", product="sms.message", quantity="3", userId="cy")
    async with Live.open(service) as resumed:
        await resumed.subscribe(USAGE_EVENTS, org=org.org, after=seen[0]["cursor"])
        again = [await resumed.next("usageEvents") for _ in range(2)]
        assert [(event["userId"], event["credits"]) for event in again] == [("bo", "2"), ("cy", "3")]
        assert again[0]["transactionId"] == seen[1]["transactionId"]
        await resumed.quiet()
        await resumed.subscribe(USAGE_EVENTS, org=org.org, after="not-a-cursor")
        assert await resumed.ended_with() == "INVALID_INPUT"


async def test_alerts_fire_once_per_crossing_live_and_in_the_history(service: Service) -> None:
    """Seed 003 (SeatsCo): 400 pooled seat credits, an alert at 10 left and one when depleted; a top-up
    of 1,000 resolves both; user_1234's spend alert at 1,000 credits this period."""
    org = await Ledger.create(service, "SeatsCo")
    await org.accepted("grantCredits", amount="400", kind="SEAT")
    async with Live.open(service) as live:
        await live.subscribe(ALERT_EVENTS, org=org.org)
        await asyncio.sleep(0.2)
        low = (await org.accepted("setAlert", kind="LOW_BALANCE", threshold="10", name="almost out"))["details"]
        depleted = (await org.accepted("setAlert", kind="LOW_BALANCE", threshold="0", name="depleted"))["details"]
        await org.accepted("recordUsage", product="sms.message", quantity="390")
        event = await live.next("alertEvents")
        assert (event["alertId"], event["state"], event["value"]) == (low["alert_id"], "TRIGGERED", "10")
        await org.accepted("recordUsage", product="sms.message", quantity="5")
        await live.quiet()  # still low: nothing new
        last = await org.accepted("recordUsage", product="sms.message", quantity="5")
        event = await live.next("alertEvents")
        assert (event["alertId"], event["state"], event["transactionId"]) == (
            depleted["alert_id"], "TRIGGERED", last["transactionId"],
        )  # fmt: skip
        await org.accepted("grantCredits", amount="1000", kind="PURCHASED")
        resolved = {(e := await live.next("alertEvents"))["name"]: e["state"] for _ in range(2)}
        assert resolved == {"almost out": "RESOLVED", "depleted": "RESOLVED"}
        await org.accepted("grantCredits", amount="1000", kind="PURCHASED")  # a second pack: nothing fires

        spend = (await org.accepted("setAlert", kind="HIGH_SPEND", threshold="1000", userId="user_1234", name="spend"))[
            "details"
        ]
        await org.accepted("recordUsage", product="sms.message", quantity="600", userId="user_1234")
        await org.accepted("recordUsage", product="sms.message", quantity="300", userId="someone")
        await live.quiet()
        await org.accepted("recordUsage", product="sms.message", quantity="400", userId="user_1234")
        event = await live.next("alertEvents")
        assert (event["alertId"], event["state"], event["value"], event["userId"]) == (
            spend["alert_id"], "TRIGGERED", "1000", "user_1234",
        )  # fmt: skip

    alerts = (await org.read("alerts { name kind threshold triggered userId }"))["alerts"]
    assert sorted((a["name"], a["triggered"]) for a in alerts) == [
        ("almost out", False), ("depleted", False), ("spend", True),
    ]  # fmt: skip
    history = await org.read("alertEvents(first: 3) { events { name state } endCursor }")
    page = history["alertEvents"]
    assert (page["events"][0]["name"], page["events"][0]["state"]) == ("spend", "TRIGGERED")
    older = await org.read(
        "alertEvents(first: 10, after: $after) { events { name state } endCursor }",
        "$after: String",
        after=page["endCursor"],
    )
    assert len(page["events"]) + len(older["alertEvents"]["events"]) == 5
    assert older["alertEvents"]["endCursor"] is None
    assert [e["name"] for e in older["alertEvents"]["events"]][-1] == "almost out"
    await org.accepted("removeAlert", alertId=spend["alert_id"])  # it was triggered: RESOLVED
    assert len((await org.read("alerts { id }"))["alerts"]) == 2
    newest = (await org.read("alertEvents { events { name state cursor } }"))["alertEvents"]["events"]
    assert [(e["name"], e["state"]) for e in newest[:2]] == [("spend", "RESOLVED"), ("spend", "TRIGGERED")]
    assert len(newest) == 6  # the history stays
    # A client that missed events resumes from the last cursor it saw.
    async with Live.open(service) as resumed:
        await resumed.subscribe(ALERT_EVENTS, org=org.org, after=newest[2]["cursor"])
        missed = [await resumed.next("alertEvents") for _ in range(2)]
        assert [(e["name"], e["state"]) for e in missed] == [("spend", "TRIGGERED"), ("spend", "RESOLVED")]
        await resumed.quiet()


async def test_alert_mutations_answer_clear_errors(service: Service) -> None:
    org = await Ledger.create(service, "Alert errors")
    await org.rejected("removeAlert", "NOT_FOUND", alertId=str(uuid.uuid4()))
    await org.rejected("setAlert", "NOT_FOUND", kind="LOW_BALANCE", threshold="1", teamId=str(uuid.uuid4()))
    body = await service.graphql(
        "mutation($input: SetAlertInput!) { setAlert(input: $input) { status } }",
        input={"organizationId": org.org, "kind": "LOW_BALANCE", "threshold": "1", "userId": "ana",
               "idempotencyKey": "bad"},
    )  # fmt: skip
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    code = await org.read_error("alertEvents(after: $after) { endCursor }", "$after: String", after="not-a-cursor")
    assert code == "INVALID_INPUT"
    # A cursor's time at the edge of the calendar (it overflows in UTC) is a bad cursor, not a crash.
    edge = json.dumps([org.org, "0001-01-01T00:00:00+01:00", str(uuid.uuid4())]).encode()
    for field in ("alertEvents", "transactions"):
        cursor = base64.urlsafe_b64encode(
            edge if field == "alertEvents" else edge[:-1] + b',"0001-01-01T00:00:00+01:00"]'
        )
        selection = f"{field}(after: $after) {{ __typename }}"
        assert await org.read_error(selection, "$after: String", after=cursor.decode()) == "INVALID_INPUT"
    # The same request again names the same alert; another request with the key is a conflict.
    first = await org.accepted("setAlert", kind="HIGH_SPEND", threshold="5", idempotencyKey="alert-once")
    again = await org.accepted("setAlert", kind="HIGH_SPEND", threshold="5", idempotencyKey="alert-once")
    assert first["details"]["alert_id"] == again["details"]["alert_id"]
    assert first["transactionId"] == again["transactionId"]


async def test_meters_for_an_unknown_team_or_org_are_refused(service: Service) -> None:
    org = await Ledger.create(service, "Unknown")
    async with Live.open(service) as live:
        await live.subscribe(TEAM_METER, org=org.org, team=str(uuid.uuid4()))
        assert await live.ended_with() == "NOT_FOUND"
        await live.subscribe(ORG_METER, org=str(uuid.uuid4()))
        assert await live.ended_with() == "NOT_FOUND"


async def test_a_running_subscription_stops_when_access_ends(
    service: Service, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(constants, "access_recheck_s", 0.3)
    org = await Ledger.create(service, "Revoked")
    stored, key = await create_api_key(
        pool, name="viewer", scope="organization", organization_id=uuid.UUID(org.org), role=Role.VIEWER
    )
    await put_member(pool, uuid.UUID(org.org), "leaver", Role.VIEWER)
    token = issue_token(await token_secret(pool, ""), "leaver", datetime.now(UTC), timedelta(hours=1))
    async with Live.open(service, key) as by_key, Live.open(service, token) as by_user:
        await by_key.subscribe(ORG_METER, org=org.org)
        await by_user.subscribe(ORG_METER, org=org.org)
        assert (await by_key.next("creditMeter"))["total"] == "0"
        assert (await by_user.next("creditMeter"))["total"] == "0"
        await by_key.quiet(1.0)  # rechecked a few times, still allowed
        revoked = await service.graphql(
            "mutation($input: RevokeApiKeyInput!) { revokeApiKey(input: $input) { revokedAt } }",
            input={"id": str(stored.id), "organizationId": org.org},
        )
        assert "errors" not in revoked, revoked
        await service.graphql(
            "mutation($input: RemoveMemberInput!) { removeMember(input: $input) { userId } }",
            input={"organizationId": org.org, "userId": "leaver"},
        )
        assert await by_key.ended_with() == "UNAUTHENTICATED"
        assert await by_user.ended_with() == "FORBIDDEN"
        # A new subscription on the same connection is decided afresh, not by what it decided before.
        await by_key.subscribe(ORG_METER, org=org.org)
        assert await by_key.ended_with() == "UNAUTHENTICATED"
        await by_user.subscribe(ORG_METER, org=org.org)
        assert await by_user.ended_with() == "FORBIDDEN"


async def test_a_meter_reads_afresh_what_changes_without_a_command(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lot that expires stops counting at once, with no command and so no update: the meter's
    periodic read shows it (as it would an update lost on the way)."""
    monkeypatch.setattr(constants, "access_recheck_s", 0.3)
    org = await Ledger.create(service, "Expiring")
    team = await org.team("Short-lived")
    soon = datetime.now(UTC) + timedelta(seconds=1)
    await org.accepted("grantCredits", amount="5", teamId=team, expiresAt=soon)
    async with Live.open(service) as live:
        await live.subscribe(TEAM_METER, org=org.org, team=team)
        assert (await live.next("teamCreditMeter"))["total"] == "5"
        assert (await live.next("teamCreditMeter", timeout_s=5))["total"] == "0"


@pytest.fixture
async def second_api(service: Service) -> AsyncIterator[str]:
    """Another API process's worth: its own app, pool, Redis connections and pub/sub hub."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(replace(service.settings, port=port)), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


async def test_subscribers_of_another_api_process_see_the_changes(service: Service, second_api: str) -> None:
    org = await Ledger.create(service, "Two processes")
    async with Live.open(service, url=second_api) as there, Live.open(service) as here:
        await there.subscribe(ORG_METER, org=org.org)
        await here.subscribe(ORG_METER, org=org.org)
        assert (await there.next("creditMeter"))["total"] == "0"
        assert (await here.next("creditMeter"))["total"] == "0"
        await org.accepted("grantCredits", amount="25")  # through the first process
        assert (await there.next("creditMeter"))["total"] == "25"
        assert (await here.next("creditMeter"))["total"] == "25"


async def test_one_connection_runs_a_bounded_number_of_subscriptions(service: Service) -> None:
    org = await Ledger.create(service, "Many")
    async with Live.open(service) as live:
        for _ in range(subscriptions_per_connection_max):
            await live.subscribe(ALERT_EVENTS, org=org.org)
        await live.quiet(1.0)  # all running, none refused
        await live.subscribe(ALERT_EVENTS, org=org.org)
        assert await live.ended_with() == "LIMIT_REACHED"
