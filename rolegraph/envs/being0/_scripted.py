"""A scripted Being-0 planner (a test double, and the simulator-overhead benchmark's planner): it
answers each Cradle stage in form and plays a fixed list of calls, repeating a call that failed,
as a reflecting planner would. Also the composite plan that solves each task."""

from __future__ import annotations

import json

from rolegraph.models import ChatRequest, FunctionModel

_DOOR = "search_and_move_towards(target_name='{}')"
PLANS: dict[str, list[str]] = {
    "fetch_bottle": [_DOOR.format("kitchen_office_door"), "grab(object_name='bottle')",
                     _DOOR.format("kitchen_office_door"), "place_on(target_name='desk')"],
    "prepare_coffee": [_DOOR.format("kitchen_meeting_door"), "grab(object_name='cup')",
                       _DOOR.format("kitchen_meeting_door"), "place_on(target_name='coffee_machine')",
                       "grab(object_name='cup')", _DOOR.format("kitchen_office_door"),
                       _DOOR.format("office_lounge_door"), "place_on(target_name='lounge_table')"],
    "carry_basket": [_DOOR.format("kitchen_meeting_door"), "grab(object_name='basket')",
                     _DOOR.format("kitchen_meeting_door"), "place_on(target_name='kitchen_table')"],
    "serve_beer": [_DOOR.format("office_lounge_door"), _DOOR.format("kitchen_office_door"),
                   "grab(object_name='beer')", "open_beer()", _DOOR.format("kitchen_office_door"),
                   _DOOR.format("office_lounge_door"), "place_on(target_name='lounge_table')"],
    "handout_snack": [_DOOR.format("meeting_lounge_door"), _DOOR.format("kitchen_meeting_door"),
                      "grab(object_name='snack')", _DOOR.format("kitchen_meeting_door"),
                      _DOOR.format("meeting_lounge_door"), "handout(person_name='alice')"],
    "tidy_mug": [_DOOR.format("office_lounge_door"), "grab(object_name='mug')", _DOOR.format("kitchen_office_door"),
                 "place_on(target_name='kitchen_counter')"],
}
"""A plan of connector calls that completes each task."""


def scripted_planner(plan: list[str], *, bad_first: bool = False, idle: str = "open_beer()") -> FunctionModel:
    """Plays `plan` (then `idle`); with `bad_first`, the first action answer is unreadable."""
    todo = list(plan)
    state = {"bad": bad_first}

    def answer(request: ChatRequest) -> str:
        text = "\n".join(m.content or "" for m in request.messages)
        if "information-gathering stage" in text:
            return json.dumps({"image_description": "a room", "target_name": "-", "area": "-"})
        if "self-reflection stage" in text:
            return json.dumps({"success": "succeeded" in text, "reason": "as the skill reported"})
        if "task-inference stage" in text:
            return json.dumps({"history_summary": "so far", "subtask": "the next step"})
        if "action-planning stage" in text:
            if state["bad"]:
                state["bad"] = False
                return json.dumps({"reasoning": "x", "action": "import os"})
            last = text.split("Last action: ")[1].split("\n")[0] if "Last action: " in text else ""
            if "-> failed" in last:
                return json.dumps({"reasoning": "try again", "action": last.split(" -> ")[0]})
            return json.dumps({"reasoning": "next", "action": todo.pop(0) if todo else idle})
        return "a short summary"

    return FunctionModel(answer)
