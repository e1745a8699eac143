"""The generic machine of shop.core.states, on a toy machine (no database)."""

from enum import StrEnum

import pytest

from shop.core.errors import Conflict
from shop.core.states import Machine, Step


class Lamp(StrEnum):
    OFF = "off"
    ON = "on"
    BROKEN = "broken"


class Press(StrEnum):
    SWITCH_ON = "switch_on"
    SWITCH_OFF = "switch_off"
    SMASH = "smash"


LAMP = Machine(
    name="lamp",
    statuses=Lamp,
    actions=Press,
    moves={
        (Lamp.OFF, Press.SWITCH_ON): Lamp.ON,
        (Lamp.ON, Press.SWITCH_OFF): Lamp.OFF,
        (Lamp.OFF, Press.SMASH): Lamp.BROKEN,
        (Lamp.ON, Press.SMASH): Lamp.BROKEN,
    },
    repeats=frozenset({(Lamp.ON, Press.SWITCH_ON), (Lamp.BROKEN, Press.SMASH)}),
)


def test_a_legal_move_answers_the_next_status_and_that_it_moved():
    assert LAMP.step("off", Press.SWITCH_ON) == Step(to=Lamp.ON, moved=True)


def test_a_harmless_repeat_answers_the_same_status_and_that_nothing_moved():
    assert LAMP.step("on", Press.SWITCH_ON) == Step(to=Lamp.ON, moved=False)


def test_an_illegal_move_is_refused_with_one_conflict_naming_machine_status_and_action():
    with pytest.raises(Conflict) as refused:
        LAMP.step("broken", Press.SWITCH_ON)
    assert refused.value.code == "illegal_transition"
    assert refused.value.details == {"machine": "lamp", "status": "broken", "action": "switch_on"}


def test_a_status_the_machine_does_not_know_is_refused_the_same_way():
    with pytest.raises(Conflict) as refused:
        LAMP.step("melted", Press.SWITCH_OFF)
    assert refused.value.details == {"machine": "lamp", "status": "melted", "action": "switch_off"}
    assert not LAMP.allows("melted", Press.SWITCH_OFF)
    assert not LAMP.is_repeat("melted", Press.SWITCH_OFF)


def test_a_status_read_as_a_plain_string_is_the_enum_member():
    step = LAMP.step("off", Press.SMASH)
    assert step.to is Lamp.BROKEN and step.to == "broken"


@pytest.mark.parametrize(
    ("status", "action", "allows", "repeat"),
    [
        ("off", Press.SWITCH_ON, True, False),
        ("on", Press.SWITCH_ON, False, True),
        ("off", Press.SWITCH_OFF, False, False),
        ("broken", Press.SMASH, False, True),
    ],
)
def test_allows_and_is_repeat_tell_the_three_answers_apart(status, action, allows, repeat):
    assert LAMP.allows(status, action) is allows
    assert LAMP.is_repeat(status, action) is repeat


def test_statuses_allowing_an_action_are_the_sources_of_its_legal_moves():
    assert LAMP.statuses_allowing(Press.SMASH) == {Lamp.OFF, Lamp.ON}
    assert LAMP.statuses_allowing(Press.SWITCH_OFF) == {Lamp.ON}


def test_pairs_walks_every_status_with_every_action():
    assert len(list(LAMP.pairs())) == len(Lamp) * len(Press)


def test_a_pair_cannot_be_both_a_move_and_a_repeat():
    with pytest.raises(ValueError, match="both a move and a repeat"):
        Machine(
            name="bad",
            statuses=Lamp,
            actions=Press,
            moves={(Lamp.OFF, Press.SWITCH_ON): Lamp.ON},
            repeats=frozenset({(Lamp.OFF, Press.SWITCH_ON)}),
        )


def test_a_table_with_plain_strings_is_refused():
    with pytest.raises(TypeError):
        Machine(name="bad", statuses=Lamp, actions=Press, moves={("off", Press.SWITCH_ON): Lamp.ON})
    with pytest.raises(TypeError):
        Machine(name="bad", statuses=Lamp, actions=Press, moves={(Lamp.OFF, Press.SWITCH_ON): "on"})
