"""The dashboard's JSON API over a local store (SPEC 20), on runs made by real `graflow run` processes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from graflow.schedule import Schedule, schedules_for
from graflow.state.local import LocalStore
from graflow.state.records import RunStatus
from tests.support.waiting import wait_until
from tests.ui.conftest import SUSPENDED_REVIEW, graflow, run_ids

MakeRuns = Callable[..., Path]
ClientFor = Callable[..., TestClient]


@pytest.fixture
def state(make_runs: MakeRuns) -> Path:
    """One suspended ``review`` run (waiting for an approval) and one failed ``broken`` run."""
    return make_runs("review", "broken")


def _cli_json(*args: str) -> object:
    return json.loads(graflow(*args, check=True).stdout)


# --- runs ----------------------------------------------------------------------------------


def test_runs_are_the_objects_of_graflow_runs_json_newest_first(state: Path, client_for: ClientFor) -> None:
    page = client_for(state).get("/api/runs").json()

    listed = _cli_json("runs", "--json", "--state-dir", str(state))
    assert page["total"] == 2
    assert [{k: run[k] for k in listed[0]} for run in page["runs"]] == listed  # type: ignore[index]
    assert [run["workflow"] for run in page["runs"]] == ["broken", "review"]
    assert [run["status"] for run in page["runs"]] == ["failed", "suspended"]


def test_runs_are_filtered_by_status_and_workflow_and_paginated(
    make_runs: MakeRuns, client_for: ClientFor
) -> None:
    state = make_runs("broken", "broken", "broken", "review")
    client = client_for(state)

    first = client.get("/api/runs", params={"workflow": "broken", "limit": 2}).json()
    second = client.get("/api/runs", params={"workflow": "broken", "limit": 2, "offset": 2}).json()
    suspended = client.get("/api/runs", params={"status": "suspended"}).json()

    assert (first["total"], len(first["runs"]), len(second["runs"])) == (3, 2, 1)
    assert {r["run_id"] for r in first["runs"]}.isdisjoint(r["run_id"] for r in second["runs"])
    assert [r["workflow"] for r in suspended["runs"]] == ["review"]
    assert client.get("/api/runs", params={"status": "sleeping"}).status_code == 422
    assert client.get("/api/runs", params={"limit": 0}).status_code == 422


def test_a_run_shows_each_task_with_its_state_attempts_and_result(state: Path, client_for: ClientFor) -> None:
    run_id = run_ids(state)["review"]

    detail = client_for(state).get(f"/api/runs/{run_id}").json()

    tasks = {t["task_id"]: t for t in detail["tasks"]}
    assert {name: t["state"] for name, t in tasks.items()} == SUSPENDED_REVIEW
    assert list(tasks) == list(SUSPENDED_REVIEW)
    assert tasks["transform"]["kind"] == "group"
    assert tasks["customers"]["attempts"] == 2
    assert tasks["extract"]["result"] == {
        "task_id": "extract",
        "type": "list",
        "text": "[0, 1, 2, 3, 4]",
        "size": 15,
        "truncated": False,
    }
    assert tasks["approve"]["feedback_id"] == detail["pending_feedback"][0]["feedback_id"]
    assert detail["run"]["status"] == "suspended" and detail["resumable"] is True


def test_a_retried_task_has_a_failed_bar_then_a_succeeded_one_on_the_timeline(
    state: Path, client_for: ClientFor
) -> None:
    run_id = run_ids(state)["review"]

    detail = client_for(state).get(f"/api/runs/{run_id}").json()

    bars = [(b["outcome"], b["attempt"]) for b in detail["timeline"] if b["task_id"] == "customers"]
    assert bars == [("failed", 1), ("succeeded", 2)]
    failed, succeeded = (b for b in detail["timeline"] if b["task_id"] == "customers")
    assert failed["end"] <= succeeded["start"] <= succeeded["end"]
    assert {b["task_id"] for b in detail["timeline"]} == {"extract", "totals", "customers"}
    (failure,) = detail["failures"]
    assert (failure["error_type"], failure["message"], failure["final"]) == (
        "ConnectionError",
        "the warehouse timed out",
        False,
    )


def test_a_failed_run_shows_its_error_and_the_traceback_of_the_task_that_raised(
    state: Path, client_for: ClientFor
) -> None:
    run_id = run_ids(state)["broken"]

    detail = client_for(state).get(f"/api/runs/{run_id}").json()

    assert detail["run"]["error"] == "task 'parse': ValueError: row 3 has no date"
    (failure,) = detail["failures"]
    assert failure["final"] is True
    assert 'raise ValueError("row 3 has no date")' in failure["traceback"]
    assert {t["task_id"]: t["state"] for t in detail["tasks"]} == {"fetch": "done", "parse": "failed"}


def test_the_graph_draws_the_group_as_a_box_around_its_members(state: Path, client_for: ClientFor) -> None:
    run_id = run_ids(state)["review"]

    graph = client_for(state).get(f"/api/runs/{run_id}/graph").json()

    nodes = {n["id"]: n for n in graph["nodes"]}
    box = nodes["transform"]
    assert box["kind"] == "group"
    for member in ("totals", "customers"):
        inner = nodes[member]
        assert inner["parent"] == "transform"
        assert box["x"] < inner["x"] and inner["x"] + inner["w"] < box["x"] + box["w"]
        assert box["y"] < inner["y"] and inner["y"] + inner["h"] < box["y"] + box["h"]
    assert nodes["extract"]["y"] + nodes["extract"]["h"] <= box["y"] < nodes["approve"]["y"]
    assert {(e["source"], e["target"], e["kind"]) for e in graph["edges"]} == {
        ("extract", "transform", "forward"),
        ("transform", "approve", "forward"),
        ("approve", "publish", "forward"),
    }
    assert graph["mermaid"].startswith("flowchart TD")


def test_a_long_result_is_cut_on_the_page_and_whole_on_request(
    make_runs: MakeRuns, client_for: ClientFor
) -> None:
    state = make_runs("review")
    run_id = run_ids(state)["review"]
    client = client_for(state)
    assert (
        client.post(
            f"/api/feedback/{_pending(client)[0]['feedback_id']}", json={"approved": True}, headers=_POST
        ).status_code
        == 200
    )
    _resume_and_wait(client, state, run_id)

    preview = {t["task_id"]: t for t in client.get(f"/api/runs/{run_id}").json()["tasks"]}["publish"][
        "result"
    ]
    whole = client.get(f"/api/runs/{run_id}/results/publish").json()

    assert preview["truncated"] is True and len(preview["text"]) <= 300
    assert whole["text"] == repr("published: " + "x" * 1000)
    assert whole["truncated"] is False and whole["size"] == len(whole["text"])
    assert client.get(f"/api/runs/{run_id}/results/nothing").status_code == 404


def test_an_unknown_run_is_a_404_saying_where_it_looked(state: Path, client_for: ClientFor) -> None:
    answer = client_for(state).get("/api/runs/no-such-run")

    assert answer.status_code == 404
    assert "no run 'no-such-run'" in answer.json()["detail"] and str(state) in answer.json()["detail"]


# --- questions, resume, rerun ---------------------------------------------------------------

_POST = {"X-Graflow-Request": "1"}


def _pending(client: TestClient) -> list[dict[str, object]]:
    return client.get("/api/feedback").json()  # type: ignore[no-any-return]


def _resume_and_wait(client: TestClient, state: Path, run_id: str) -> dict[str, object]:
    action = client.post(f"/api/runs/{run_id}/resume", headers=_POST)
    assert action.status_code == 200, action.text
    store = LocalStore(state)
    try:
        wait_until(lambda: store.run(run_id).status is RunStatus.SUCCEEDED, 60, "the resumed run to succeed")
    finally:
        store.close()
    return action.json()  # type: ignore[no-any-return]


def test_pending_questions_are_the_objects_of_graflow_feedback_list_json(
    state: Path, client_for: ClientFor
) -> None:
    pending = _pending(client_for(state))

    listed = _cli_json("feedback", "list", "--json", "--state-dir", str(state))
    assert [{k: q[k] for k in listed[0]} for q in pending] == listed  # type: ignore[index]
    (question,) = pending
    assert (question["feedback_type"], question["prompt"], question["task_id"]) == (
        "approval",
        "Publish the nightly report?",
        "approve",
    )


def test_an_answer_is_checked_as_everywhere_and_the_first_one_stands(
    state: Path, client_for: ClientFor
) -> None:
    client = client_for(state)
    feedback_id = _pending(client)[0]["feedback_id"]
    url = f"/api/feedback/{feedback_id}"

    wrong_kind = client.post(url, json={"response_type": "text", "text": "sure"}, headers=_POST)
    no_answer = client.post(url, json={"reason": "no decision"}, headers=_POST)
    answered = client.post(
        url, json={"approved": True, "reason": "figures look right", "responded_by": "ana"}, headers=_POST
    )
    again = client.post(url, json={"approved": False}, headers=_POST)

    assert wrong_kind.status_code == 422 and "asks for an approval" in wrong_kind.json()["detail"]
    assert no_answer.status_code == 422
    assert answered.status_code == 200
    assert answered.json()["response"]["approved"] is True
    assert answered.json()["response"]["responded_by"] == "ana"
    assert again.status_code == 409 and "answered already by ana" in again.json()["detail"]
    assert _pending(client) == []
    assert client.post("/api/feedback/unknown", json={"approved": True}, headers=_POST).status_code == 404


def test_resume_runs_graflow_resume_in_a_process_of_its_own_and_the_run_succeeds(
    state: Path, client_for: ClientFor
) -> None:
    run_id = run_ids(state)["review"]
    client = client_for(state)
    client.post(f"/api/feedback/{_pending(client)[0]['feedback_id']}", json={"approved": True}, headers=_POST)

    action = _resume_and_wait(client, state, run_id)

    launch = action["launch"]
    assert isinstance(launch, dict)
    assert launch["command"][1:5] == ["-m", "graflow", "resume", run_id]
    assert launch["command"][5:] == ["--state-dir", str(state)]
    detail = wait_until(
        lambda: (d := client.get(f"/api/runs/{run_id}").json())["launches"][0]["exit_code"] is not None and d,
        30,
        "the resume process to exit",
    )
    assert detail["launches"][0]["exit_code"] == 0
    assert "reused" in detail["launches"][0]["log_tail"]
    assert {t["state"] for t in detail["tasks"]} == {"done"}
    assert detail["resumable"] is False


def test_a_run_that_succeeded_is_not_resumed_and_an_unknown_one_is_a_404(
    make_runs: MakeRuns, client_for: ClientFor
) -> None:
    state = make_runs("review")
    client = client_for(state)
    run_id = run_ids(state)["review"]
    client.post(f"/api/feedback/{_pending(client)[0]['feedback_id']}", json={"approved": True}, headers=_POST)
    _resume_and_wait(client, state, run_id)

    again = client.post(f"/api/runs/{run_id}/resume", headers=_POST)

    assert again.status_code == 409 and "nothing is left to resume" in again.json()["detail"]
    assert client.post("/api/runs/unknown/resume", headers=_POST).status_code == 404


def test_rerun_from_a_task_is_a_new_run_that_reuses_what_came_before(
    state: Path, client_for: ClientFor
) -> None:
    client = client_for(state)
    run_id = run_ids(state)["broken"]

    action = client.post(f"/api/runs/{run_id}/rerun", json={"from_task": "parse"}, headers=_POST).json()

    new_run_id = action["launch"]["new_run_id"]
    assert new_run_id and new_run_id != run_id
    detail = wait_until(
        lambda: (d := client.get(f"/api/runs/{new_run_id}").json())["run"]["status"] == "failed" and d,
        60,
        "the rerun to fail again",
    )
    assert detail["rerun_of"] == {"run_id": run_id, "from_task": "parse"}
    unknown = client.post(f"/api/runs/{run_id}/rerun", json={"from_task": "nope"}, headers=_POST)
    assert unknown.status_code == 404 and "no task 'nope'" in unknown.json()["detail"]


# --- what a local store has not --------------------------------------------------------------


def test_a_local_store_has_no_fleet_and_says_where_one_is(state: Path, client_for: ClientFor) -> None:
    client = client_for(state)

    for path in ("/api/workers", "/api/queues", "/api/dead-letters"):
        answer = client.get(path)
        assert answer.status_code == 404
        assert "--redis-url" in answer.json()["detail"]


def test_schedules_are_listed_with_their_next_tick_and_paused_and_resumed(
    state: Path, client_for: ClientFor
) -> None:
    schedules_for({"state_dir": str(state)}).add(
        Schedule("nightly", "/srv/flows/etl.py", cron="0 2 * * *", queue="memory")
    )
    client = client_for(state)

    listed = client.get("/api/schedules").json()
    [nightly] = listed["schedules"]
    assert listed["available"] is True and "graflow scheduler" in listed["message"]
    assert (nightly["name"], nightly["trigger"], nightly["paused"]) == ("nightly", "cron 0 2 * * *", False)
    assert nightly["next_fire_at"].endswith("T02:00:00Z")

    paused = client.post("/api/schedules/nightly/pause", headers=_POST).json()
    assert paused["paused"] is True and paused["next_fire_at"] is None
    assert schedules_for({"state_dir": str(state)}).get("nightly").paused
    assert client.post("/api/schedules/nightly/resume", headers=_POST).json()["paused"] is False
    assert client.post("/api/schedules/nobody/pause", headers=_POST).status_code == 404


def test_the_openapi_description_names_the_routes_of_spec_20(state: Path, client_for: ClientFor) -> None:
    paths = client_for(state).get("/openapi.json").json()["paths"]

    assert {"get"} <= set(paths["/api/runs"]) and {"get"} <= set(paths["/api/runs/{run_id}"])
    assert {"get"} <= set(paths["/api/feedback"]) and {"post"} <= set(paths["/api/feedback/{feedback_id}"])
    assert {"post"} <= set(paths["/api/runs/{run_id}/resume"])
    assert {"get"} <= set(paths["/api/workers"]) and {"get"} <= set(paths["/api/dead-letters"])
    assert {"post"} <= set(paths["/api/dead-letters/{dead_id}/requeue"])
