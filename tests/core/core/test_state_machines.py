"""State machines: ``next_iteration()`` plus channel state (brief chapter 3; SPEC section 5).

Each machine's body is the brief's snippet as written. The names it calls
(``validate_order``, ``train_epoch``, ``time.sleep``, ...) are deterministic stand-ins
defined in the test, so the tests record every transition without waiting on anything.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from graflow.core.context import TaskExecutionContext
from graflow.core.decorators import task
from graflow.core.task import TaskWrapper
from graflow.core.workflow import workflow
from graflow.exceptions import CycleLimitExceededError, MaxStepsExceededError

# --- the brief's state_controller: START -> PROCESSING -> FINALIZING -> END ------------------------


def test_state_controller_walks_start_processing_finalizing_end() -> None:
    threshold = 3
    finalized: list[dict[str, Any]] = []
    snapshots: list[dict[str, Any]] = []

    with workflow("state_controller") as ctx:

        def finalize_handler(state: str, data: int) -> str:
            # Parameters are filled from the channel keys of the same name (SPEC section 2).
            finalized.append({"state": state, "data": data})
            return "finalized"

        @task(inject_context=True)
        def state_controller(context: TaskExecutionContext):
            """現在の状態に基づいてステート遷移を制御"""
            channel = context.get_channel()
            current_state = channel.get("state", default="START")
            data = channel.get("data", default=0)

            # ステート遷移ロジック
            if current_state == "START":
                channel.set("state", "PROCESSING")
                channel.set("data", data + 1)
                context.next_iteration()  # state_controllerにループバック

            elif current_state == "PROCESSING":
                if data < threshold:
                    # 現在の状態を維持
                    channel.set("data", data + 1)
                    context.next_iteration()
                else:
                    # 次の状態に遷移
                    channel.set("state", "FINALIZING")
                    context.next_iteration()

            elif current_state == "FINALIZING":
                # ENDに遷移し、最終タスクを作成
                channel.set("state", "END")
                final_task = TaskWrapper("end_state", finalize_handler)
                context.next_task(final_task)

            snapshots.append({"state": current_state, "data": data})
            return {"state": current_state, "data": data}

        result, run = ctx.execute("state_controller", max_steps=100, ret_context=True)

    assert snapshots == [
        {"state": "START", "data": 0},
        {"state": "PROCESSING", "data": 1},
        {"state": "PROCESSING", "data": 2},
        {"state": "PROCESSING", "data": 3},
        {"state": "FINALIZING", "data": 3},
    ]
    assert finalized == [{"state": "END", "data": threshold}]
    assert result == "finalized"
    assert run.get_result("state_controller") == {"state": "FINALIZING", "data": 3}
    assert run.channel.get("state") == "END"


# --- order_processor: NEW -> VALIDATED -> RESERVED -> PAID -> SHIPPED, then notify ---------------


def test_order_processor_moves_an_order_through_its_states_then_notifies() -> None:
    calls: list[tuple[str, Any]] = []

    def validate_order(order: dict[str, Any]) -> None:
        calls.append(("validate", order["id"]))

    def reserve_inventory(order: dict[str, Any]) -> None:
        calls.append(("reserve", order["id"]))

    def process_payment(order: dict[str, Any]) -> None:
        calls.append(("pay", order["id"]))

    def ship_order(order: dict[str, Any]) -> None:
        calls.append(("ship", order["id"]))

    def send_notification() -> str:
        calls.append(("notify", None))
        return "customer notified"

    with workflow("orders") as wf:

        @task(inject_context=True)
        def order_processor(context):
            channel = context.get_channel()
            order_state = channel.get("order_state", "NEW")
            order_data = channel.get("order_data")

            if order_state == "NEW":
                validate_order(order_data)
                channel.set("order_state", "VALIDATED")
                context.next_iteration()

            elif order_state == "VALIDATED":
                reserve_inventory(order_data)
                channel.set("order_state", "RESERVED")
                context.next_iteration()

            elif order_state == "RESERVED":
                process_payment(order_data)
                channel.set("order_state", "PAID")
                context.next_iteration()

            elif order_state == "PAID":
                ship_order(order_data)
                channel.set("order_state", "SHIPPED")
                # 通知タスクを作成
                context.next_task(TaskWrapper("notify", send_notification))

        result, run = wf.execute(
            max_steps=100, ret_context=True, initial_channel={"order_data": {"id": "A-17", "items": 2}}
        )

    assert calls == [
        ("validate", "A-17"),
        ("reserve", "A-17"),
        ("pay", "A-17"),
        ("ship", "A-17"),
        ("notify", None),
    ]
    assert run.channel.get("order_state") == "SHIPPED"
    assert run.cycle_counts["order_processor"] == 4
    assert result == "customer notified"


# --- training_fsm: INIT -> TRAINING <-> VALIDATING -> SAVING -------------------------------------


def test_training_fsm_trains_until_validation_passes_then_saves() -> None:
    target = 0.9
    events: list[str] = []
    # Training accuracy per epoch, and validation accuracy at each validation: the first
    # validation misses the target, so the machine goes back to TRAINING once.
    train_accuracy = iter([0.5, 0.7, 0.92, 0.95])
    val_accuracy = iter([0.85, 0.93])

    def initialize_model() -> dict[str, str]:
        events.append("init")
        return {"name": "tiny-model"}

    def train_epoch(model: dict[str, str]) -> dict[str, float]:
        accuracy = next(train_accuracy)
        events.append(f"train {accuracy}")
        return {"accuracy": accuracy}

    def validate(model: dict[str, str]) -> dict[str, float]:
        accuracy = next(val_accuracy)
        events.append(f"validate {accuracy}")
        return {"accuracy": accuracy}

    def save_model(model: dict[str, str]) -> None:
        events.append(f"save {model['name']}")

    with workflow("training") as wf:

        @task(inject_context=True)
        def training_fsm(context):
            channel = context.get_channel()
            phase = channel.get("phase", "INIT")
            model = channel.get("model")

            if phase == "INIT":
                model = initialize_model()
                channel.set("model", model)
                channel.set("phase", "TRAINING")
                context.next_iteration()

            elif phase == "TRAINING":
                metrics = train_epoch(model)
                if metrics["accuracy"] >= target:
                    channel.set("phase", "VALIDATING")
                context.next_iteration()

            elif phase == "VALIDATING":
                val_metrics = validate(model)
                if val_metrics["accuracy"] >= target:
                    channel.set("phase", "SAVING")
                else:
                    channel.set("phase", "TRAINING")  # 訓練に戻る
                context.next_iteration()

            elif phase == "SAVING":
                save_model(model)
                return "COMPLETE"

        result = wf.execute(max_steps=100)

    assert events == [
        "init",
        "train 0.5",
        "train 0.7",
        "train 0.92",
        "validate 0.85",
        "train 0.95",
        "validate 0.93",
        "save tiny-model",
    ]
    assert result == "COMPLETE"


# --- connection_fsm: a protocol state machine ----------------------------------------------------


def test_connection_fsm_connects_handles_messages_and_disconnects() -> None:
    events: list[str] = []
    readiness = iter([False, True])  # not ready on the first check: the machine waits once
    inbox = ["hello", "bye"]
    # The snippet calls time.sleep(1) while connecting; a stand-in records the wait instead.
    time = SimpleNamespace(sleep=lambda seconds: events.append(f"sleep {seconds}"))

    def establish_connection() -> None:
        events.append("establish")

    def connection_ready() -> bool:
        return next(readiness)

    def should_disconnect() -> bool:
        return not inbox

    def handle_messages() -> None:
        events.append(f"handle {inbox.pop(0)}")

    def close_connection() -> None:
        events.append("close")

    with workflow("connection") as wf:

        @task(inject_context=True)
        def connection_fsm(context):
            channel = context.get_channel()
            state = channel.get("state", "DISCONNECTED")

            if state == "DISCONNECTED":
                establish_connection()
                channel.set("state", "CONNECTING")
                context.next_iteration()

            elif state == "CONNECTING":
                if connection_ready():
                    channel.set("state", "CONNECTED")
                    context.next_iteration()
                else:
                    time.sleep(1)
                    context.next_iteration()

            elif state == "CONNECTED":
                if should_disconnect():
                    channel.set("state", "DISCONNECTING")
                    context.next_iteration()
                else:
                    handle_messages()
                    context.next_iteration()

            elif state == "DISCONNECTING":
                close_connection()
                return "DONE"

        result, run = wf.execute(max_steps=100, ret_context=True)

    assert events == ["establish", "sleep 1", "handle hello", "handle bye", "close"]
    assert result == "DONE"
    assert run.channel.get("state") == "DISCONNECTING"


# --- game_loop -------------------------------------------------------------------------------------


def test_game_loop_plays_a_game_returns_to_the_menu_and_quits() -> None:
    events: list[str] = []
    menu_choices = iter(["start", "quit"])
    turns = iter(["continue", "won"])

    def show_menu() -> str:
        choice = next(menu_choices)
        events.append(f"menu {choice}")
        return choice

    def get_player_action() -> str:
        return "move"

    def process_turn(action: str) -> str:
        outcome = next(turns)
        events.append(f"turn {action} {outcome}")
        return outcome

    def show_result(game_state: str) -> None:
        events.append(f"result {game_state}")

    with workflow("game") as wf:

        @task(inject_context=True)
        def game_loop(context):
            channel = context.get_channel()
            game_state = channel.get("game_state", "MENU")

            if game_state == "MENU":
                choice = show_menu()
                channel.set("game_state", "PLAYING" if choice == "start" else "QUIT")
                context.next_iteration()

            elif game_state == "PLAYING":
                player_action = get_player_action()
                game_result = process_turn(player_action)

                if game_result == "won":
                    channel.set("game_state", "WIN")
                elif game_result == "lost":
                    channel.set("game_state", "LOSE")
                context.next_iteration()

            elif game_state in ["WIN", "LOSE"]:
                show_result(game_state)
                channel.set("game_state", "MENU")
                context.next_iteration()

            elif game_state == "QUIT":
                return "GAME_OVER"

        result = wf.execute(max_steps=100)

    assert events == [
        "menu start",
        "turn move continue",
        "turn move won",
        "result WIN",
        "menu quit",
    ]
    assert result == "GAME_OVER"


# --- bounds ------------------------------------------------------------------------------------------


def test_a_machine_that_never_ends_is_stopped_by_max_steps() -> None:
    visits: list[int] = []

    with workflow("endless") as wf:

        @task(inject_context=True, max_cycles=1_000)
        def spinner(context: TaskExecutionContext) -> None:
            visits.append(context.cycle_count)
            context.next_iteration()

        with pytest.raises(MaxStepsExceededError) as info:
            wf.execute(max_steps=20)

    assert len(visits) == 20
    assert info.value.max_steps == 20
    assert info.value.last_task_id == "spinner"
    assert "max_steps=20" in str(info.value)
    assert "'spinner'" in str(info.value)


def test_a_machine_that_never_ends_is_stopped_by_its_max_cycles() -> None:
    with workflow("endless_cycles") as wf:

        @task(inject_context=True, max_cycles=5)
        def spinner(context: TaskExecutionContext) -> None:
            context.next_iteration()

        with pytest.raises(CycleLimitExceededError) as info:
            wf.execute(max_steps=100)

    assert info.value.task_id == "spinner"
    assert info.value.max_cycles == 5


def test_a_state_machine_keeps_its_state_per_run() -> None:
    with workflow("per_run_state") as wf:

        @task(inject_context=True)
        def counter(context: TaskExecutionContext) -> int:
            channel = context.get_channel()
            count = channel.get("count", default=0) + 1
            channel.set("count", count)
            if count < 3:
                context.next_iteration()
            return count

        first = wf.execute()
        second = wf.execute()

    assert first == second == 3
