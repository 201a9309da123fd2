"""One ``--byzantine`` grammar and parser for the consensus simulator and proof of useful work; each
side maps the entries to its own behaviours."""

from __future__ import annotations

import pytest

from prosima.ledger.consensus.byzantine_spec import SpecEntry, parse_spec
from prosima.ledger.sim.behaviour import Behaviour as ConsensusBehaviour
from prosima.ledger.sim.byzantine import FaultSchedule
from prosima.ledger.useful_work.behaviour import Behaviour as PouwBehaviour
from prosima.ledger.useful_work.behaviour import parse_byzantine


def entries(spec: str) -> list[SpecEntry]:
    return list(parse_spec(spec, example="'x'"))


def test_both_item_forms_read_into_entries():
    assert entries("2xsilent@hub:3, garbage , 5:copy,copy@5,,bad_reveal:2") == [
        SpecEntry("2xsilent@hub:3", "silent", 2, "hub", 3),
        SpecEntry("garbage", "garbage"),
        SpecEntry("5:copy", "copy", target=5),
        SpecEntry("copy@5", "copy", target=5),
        SpecEntry("bad_reveal:2", "bad_reveal", start=2),
    ]
    assert entries(" 3 : inflated_score ") == [SpecEntry("3 : inflated_score", "inflated_score", target=3)]
    assert entries("") == []


def test_behaviour_names_fold_case_and_dashes():
    assert entries("Double_Sign@1")[0].behaviour(ConsensusBehaviour) is ConsensusBehaviour.DOUBLE_SIGN
    assert entries("2:Bad-Reveal")[0].behaviour(PouwBehaviour) is PouwBehaviour.BAD_REVEAL
    with pytest.raises(
        ValueError, match="unknown behaviour 'lazy' for node 2; choose from honest, bad_reveal"
    ):
        entries("2:lazy")[0].behaviour(PouwBehaviour)
    with pytest.raises(ValueError, match="unknown behaviour 'lazy'; choose from silent, garbage"):
        entries("lazy@hub")[0].behaviour(ConsensusBehaviour)


@pytest.mark.parametrize("item", ["2copy", "-1:copy", "silent@", "2:silent:3", "silent@7:", "x@hub@1"])
def test_unreadable_items_name_the_item_and_the_forms(item):
    with pytest.raises(ValueError, match=rf"cannot read '{item}' in --byzantine; expected NODE:BEHAVIOUR or"):
        entries(f"silent,{item}")


def test_a_bad_entry_is_reported_before_a_later_syntax_error():
    with pytest.raises(ValueError, match="node 1 is given twice"):
        parse_byzantine("1:copy,1:late,???", 8)


def test_each_side_reads_the_other_form_alike():
    order = list(range(6))
    assert FaultSchedule.parse("1:silent", n=6, by_degree=order) == FaultSchedule.parse(
        "silent@1", n=6, by_degree=order
    )
    assert parse_byzantine("copy@2,5:late", 8) == {2: PouwBehaviour.COPY, 5: PouwBehaviour.LATE}


@pytest.mark.parametrize("spec", ["copy@hub", "copy", "2xcopy@1", "copy@1:3"])
def test_pouw_cheats_name_one_node_for_every_round(spec):
    with pytest.raises(ValueError, match="a PoUW cheat is one node, named by its index, for every round"):
        parse_byzantine(spec, 8)
