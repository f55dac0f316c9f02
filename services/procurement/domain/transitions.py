"""Refusing a move a state machine does not allow, the same way everywhere."""

from __future__ import annotations

import enum

from libs.common.errors import FailedPrecondition


def refuse(resource: str, action: str, state: enum.Enum) -> FailedPrecondition:
    return FailedPrecondition(
        f"cannot {action} {resource}: it is {state.value}",
        reason="INVALID_STATE_TRANSITION",
        metadata={"resource": resource, "current_state": state.value, "action": action},
    )
