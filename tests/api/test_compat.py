"""LaunchDarkly's approval requests and the /v1 approvals view of the same change requests."""

from __future__ import annotations

import re

from tests.api.test_posthog import assert_shape, example
from tests.support.apiclient import Client
from tests.support.apiseed import APPLIED, FAILED, PENDING, REJECTED, STAGING_CR, at

LD = "/api/v2/projects/default/flags/{flag}/environments/{env}/approval-requests"
HEX24 = re.compile(r"[0-9a-f]{24}")


def hex24(uuid: str) -> str:
    """LaunchDarkly's 24-hex-digit id of the object `uuid` names."""
    return uuid.replace("-", "")[:24]


def test_launchdarkly_list_and_detail_in_its_shape(client: Client) -> None:
    listing = client.get(LD.format(flag="checkout", env="production")).json()
    # Shape-check the applied one: only it has every date (appliedDate is null until then).
    completed = [i for i in listing["items"] if i["status"] == "completed"]
    assert_shape({**listing, "items": completed}, example("launchdarkly-approval-requests-list.json"))
    assert [i["_id"] for i in listing["items"]] == [
        hex24(REJECTED.id),
        hex24(FAILED.id),
        hex24(APPLIED.id),
    ]  # newest first, this flag only
    applied = client.get(LD.format(flag="checkout", env="production") + f"/{hex24(APPLIED.id)}").json()
    # The uuid finds it too (the PostHog view's id).
    assert client.get(LD.format(flag="checkout", env="production") + f"/{APPLIED.id}").json() == applied
    assert_shape(applied, example("launchdarkly-approval-request.json"))
    assert (applied["reviewStatus"], applied["status"]) == ("approved", "completed")
    assert applied["creationDate"] == int(at(10).timestamp() * 1000) and applied["appliedDate"] == int(
        at(13).timestamp() * 1000
    )
    assert [(r["kind"], r["creationDate"]) for r in applied["allReviews"]] == [
        ("approve", int(at(12).timestamp() * 1000)),
        ("approve", int(at(12.5).timestamp() * 1000)),
    ]
    people = client.get("/api/environments/1/explicit_members/").json()
    member = {m["user"]["distinct_id"]: hex24(m["user_uuid"]) for m in people}
    assert applied["requestorId"] == member["ada"] and applied["appliedByMemberId"] == member["grace"]
    assert applied["allReviews"][0]["memberId"] == member["grace"]
    assert all(HEX24.fullmatch(r["_id"]) for r in applied["allReviews"])
    # LaunchDarkly's semantic patch: the first rule's rollout as weights of true and false.
    [instruction] = applied["instructions"]
    assert instruction["kind"] == "updateRuleVariationOrRollout"
    assert sorted(instruction["rolloutWeights"].values()) == [50000, 50000]
    assert applied["description"] == "ramp-checkout description" and applied["conflicts"] == []


def test_launchdarkly_states_reviews_and_conflicts(client: Client) -> None:
    base = LD.format(flag="checkout", env="production")
    failed = client.get(f"{base}/{hex24(FAILED.id)}").json()
    assert failed["status"] == "failed" and failed["conflicts"][0]["reason"].startswith(
        "Flag version mismatch"
    )
    rejected = client.get(f"{base}/{hex24(REJECTED.id)}").json()
    assert (rejected["reviewStatus"], rejected["allReviews"][0]["kind"]) == ("declined", "decline")
    enable = client.get(LD.format(flag="search", env="production") + f"/{PENDING.id}").json()
    assert (enable["reviewStatus"], enable["status"], enable["instructions"]) == (
        "pending",
        "pending",
        [{"kind": "turnFlagOn"}],
    )
    scheduled = client.get(LD.format(flag="checkout", env="staging") + f"/{STAGING_CR.id}").json()
    assert scheduled["reviewStatus"] == "approved" and scheduled["executionDate"] is None
    # The id must belong to this flag and environment.
    assert client.get(LD.format(flag="search", env="production") + f"/{APPLIED.id}").status_code == 404
    assert client.get(LD.format(flag="checkout", env="nowhere")).status_code == 404


def test_v1_approvals(client: Client) -> None:
    one = client.get(f"/v1/approvals/{APPLIED.id}").json()
    assert_shape(one, example("v1-approval.json"))
    assert (one["status"], one["change_type"], one["env_id"], one["flag_id"], one["flag_key"]) == (
        "applied",
        "update",
        "1",
        "1",  # the flag's id, as that API names flags
        "checkout",
    )
    assert one["payload"]["percentage_rollout"] == 5000  # basis points
    assert one["review_note"] == "ship it" and one["reviewed_at"] == "2026-03-01T12:12:00Z"
    enable = client.get(f"/v1/approvals/{PENDING.id}").json()
    assert enable["payload"]["enabled"] is True and enable["status"] == "pending"
    listing = client.get("/v1/approvals").json()
    assert listing["limit"] == 50 and listing["total"] == 5
    assert [a["id"] for a in listing["data"]] == [
        STAGING_CR.id,
        REJECTED.id,
        FAILED.id,
        PENDING.id,
        APPLIED.id,
    ]
    rejected = client.get("/v1/approvals?status=rejected").json()
    assert [a["id"] for a in rejected["data"]] == [REJECTED.id, FAILED.id]  # failed reads as rejected here
    assert rejected["data"][1]["state"] == "failed"
    assert client.get("/v1/approvals?limit=1000").json()["limit"] == 100
    assert [a["id"] for a in client.get("/v1/approvals?limit=2&offset=1").json()["data"]] == [
        REJECTED.id,
        FAILED.id,
    ]
    assert client.get("/v1/approvals?status=done").status_code == 422
