"""Authorisation rules: allow-list, then registration, permit and stake (membership first)."""

import pytest

from services.miner.metagraph import Snapshot
from services.miner.validators import Authoriser, Policy
from tests.miner_fixtures import snapshot_of

VALI, NO_PERMIT, POOR, LISTED, STRANGER = "5Vali", "5NoPermit", "5Poor", "5Listed", "5Stranger"
GRAPH = snapshot_of((VALI, True, 5000.0), (NO_PERMIT, False, 9000.0), (POOR, True, 999.5))


def authoriser(snapshot=GRAPH, chain=True, permit=True, min_stake=1000.0, allow=(LISTED,),
               max_age=None, age=None):
    policy = Policy(allow_list=frozenset(allow), netuid=7, chain_enabled=chain,
                    require_permit=permit, min_stake=min_stake, max_age=max_age)
    return Authoriser(policy, lambda: snapshot, lambda: age)


def test_a_registered_validator_with_permit_and_stake_is_allowed():
    decision = authoriser().decide(VALI)
    assert decision.allowed and decision.reason == "metagraph"


def test_the_allow_list_works_with_no_chain_at_all():
    decision = authoriser(snapshot=None, chain=False).decide(LISTED)
    assert decision.allowed and decision.reason == "allow_list"


def test_without_a_chain_anyone_off_the_list_is_refused():
    decision = authoriser(snapshot=None, chain=False).decide(VALI)
    assert (decision.allowed, decision.status, decision.reason) == (False, 403, "not_allowed")


def test_the_allow_list_admits_a_hotkey_the_metagraph_does_not_know():
    assert authoriser().decide(LISTED).allowed


@pytest.mark.parametrize("graph", [GRAPH, Snapshot((), (), (), block=1)])
def test_an_unknown_hotkey_is_refused_not_crashed(graph):
    decision = authoriser(snapshot=graph).decide(STRANGER)
    assert (decision.allowed, decision.status, decision.reason) == (False, 403, "not_registered")
    assert "netuid 7" in decision.description


def test_registered_without_a_validator_permit_is_refused():
    decision = authoriser().decide(NO_PERMIT)
    assert (decision.status, decision.reason) == (403, "no_validator_permit")


def test_the_permit_requirement_can_be_switched_off():
    assert authoriser(permit=False).decide(NO_PERMIT).allowed


def test_stake_below_the_minimum_is_refused_and_the_minimum_itself_is_enough():
    decision = authoriser().decide(POOR)
    assert (decision.status, decision.reason) == (403, "stake_too_low")
    assert "999.5" in decision.description and "1000" in decision.description
    assert authoriser(min_stake=999.5).decide(POOR).allowed


def test_before_the_first_metagraph_arrives_the_answer_is_503_not_403():
    decision = authoriser(snapshot=None).decide(VALI)
    assert (decision.allowed, decision.status, decision.reason) == (False, 503,
                                                                   "metagraph_unavailable")


@pytest.mark.parametrize("age,allowed", [(None, True), (0.0, True), (600.0, True), (600.5, False)])
def test_a_snapshot_older_than_the_max_age_refuses_chain_callers_with_503(age, allowed):
    decision = authoriser(max_age=600, age=age).decide(VALI)
    assert decision.allowed is allowed
    if not allowed:
        assert (decision.status, decision.reason) == (503, "metagraph_stale")
        assert "MINER_METAGRAPH_MAX_AGE=600" in decision.description


def test_a_stale_snapshot_still_lets_the_allow_list_in():
    assert authoriser(max_age=600, age=10_000.0).decide(LISTED).allowed
