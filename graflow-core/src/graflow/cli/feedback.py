"""``graflow feedback list|show|respond``: the questions tasks asked people, and answering them.

They read and write the run's state store (``--state-dir DIR``, or ``--redis-url URL
--key-prefix P``), nothing else: the asking task may be waiting in another process or on
a worker, or its run may be suspended (then ``graflow resume`` carries it on once
answered). Answers go through :meth:`FeedbackManager.provide_feedback
<graflow.hitl.FeedbackManager.provide_feedback>`, so they are checked as in Python.
"""

from __future__ import annotations

import argparse
import getpass
import json
import shlex
import socket
import sys
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from graflow.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from graflow.cli.report import cut, make_console, print_table
from graflow.cli.stores import store_arguments, store_config
from graflow.core.resume import store_for
from graflow.exceptions import RunNotFoundError
from graflow.hitl import (
    FeedbackAlreadyAnsweredError,
    FeedbackManager,
    FeedbackRequest,
    FeedbackResponse,
    FeedbackType,
)
from graflow.state.records import RunStatus

__all__ = ["list_command", "respond_command", "respond_hint", "show_command"]


def _manager(config: dict[str, Any]) -> FeedbackManager:
    return FeedbackManager.for_store(config)


def list_command(args: argparse.Namespace) -> int:
    """The requests waiting for an answer, oldest first: a table, or ``--json`` for scripts."""
    config = store_config(args)
    pending = _manager(config).list_pending_requests(args.run)
    if args.json:
        shown = [_listed(request) for request in pending]
        sys.stdout.write(json.dumps(shown, indent=2) + "\n")
        return EXIT_OK
    out = make_console(sys.stdout)
    if not pending:
        which = f" of run {args.run}" if args.run else ""
        out.print(f"no questions waiting for an answer{which} in {store_for(config).where}")
        return EXIT_OK
    print_table(out, _pending_table(pending))
    first = pending[0]
    out.print(f"answer one: {respond_hint(first, config)}")
    return EXIT_OK


def _listed(request: FeedbackRequest) -> dict[str, Any]:
    shown = request.to_json()
    del shown["response"]
    return shown


def _pending_table(pending: Sequence[FeedbackRequest]) -> Table:
    table = Table(box=box.ASCII)
    for column in ("id", "run", "task", "type", "asked at"):
        table.add_column(column, no_wrap=True)
    table.add_column("prompt")
    for request in pending:
        shown = request.to_json()
        prompt = request.prompt
        if request.options:
            prompt += f"  [{' / '.join(request.options)}]"
        table.add_row(
            Text(request.feedback_id),
            Text(request.run_id[:12]),
            Text(request.task_id),
            str(request.feedback_type),
            shown["created_at"],
            Text(cut(prompt, 120)),
        )
    return table


def show_command(args: argparse.Namespace) -> int:
    """One request, answered or not."""
    request = _manager(store_config(args)).get_request(args.feedback_id)
    if args.json:
        sys.stdout.write(json.dumps(request.to_json(), indent=2) + "\n")
        return EXIT_OK
    out = make_console(sys.stdout)
    shown = request.to_json()
    out.print(f"feedback {request.feedback_id}: {request.feedback_type}, {shown['status']}")
    out.print(f"run {request.run_id}, task {request.task_id!r}, asked at {shown['created_at']}")
    out.print(f"prompt: {request.prompt}")
    if request.options:
        out.print(f"options: {', '.join(request.options)}")
    if request.metadata:
        out.print(f"metadata: {json.dumps(request.metadata)}")
    if request.response is not None:
        out.print(f"answer: {_answer_text(request.response)}")
    return EXIT_OK


def respond_command(args: argparse.Namespace) -> int:
    """Answer one request; the asking task (or ``graflow resume`` of its suspended run) carries on."""
    config = store_config(args)
    manager = _manager(config)
    request = manager.get_request(args.feedback_id)  # FeedbackNotFoundError: exit 2, with what to do
    err = make_console(sys.stderr)
    try:
        response = _response(request, args)
    except ValueError as exc:
        err.print(f"graflow: error: {exc}")
        return EXIT_USAGE
    try:
        answered = manager.provide_feedback(request.feedback_id, response)
    except FeedbackAlreadyAnsweredError as exc:
        err.print(f"graflow: error: {exc}")
        return EXIT_FAILED
    out = make_console(sys.stdout)
    assert answered.response is not None
    out.print(
        f"answered {answered.feedback_id} ({answered.task_id!r} of run {answered.run_id}): "
        f"{_answer_text(answered.response)}"
    )
    _print_next_step(out, answered, config)
    return EXIT_OK


def _response(request: FeedbackRequest, args: argparse.Namespace) -> FeedbackResponse:
    """The answer the options give, shaped for the request's kind (its checks come after)."""
    given = [
        name
        for name, value in (
            ("--approve/--reject", args.approved),
            ("--text", args.text),
            ("--select", args.select),
            ("--data", args.data),
        )
        if value is not None
    ]
    if len(given) != 1:
        raise ValueError(
            f"give exactly one answer ({', '.join(given) or 'none given'}); {request.feedback_id} asks "
            f"for {_usage_for(request)}"
        )
    kind = request.feedback_type
    response = FeedbackResponse(
        feedback_id=request.feedback_id,
        reason=args.reason,
        responded_by=args.by or _who(),
    )
    if args.approved is not None:
        response.response_type, response.approved = FeedbackType.APPROVAL, args.approved
    elif args.text is not None:
        response.response_type, response.text = FeedbackType.TEXT, args.text
    elif args.select is not None:
        if kind is FeedbackType.MULTI_SELECTION:
            response.response_type, response.selected_multiple = kind, list(args.select)
        elif len(args.select) == 1:
            response.response_type, response.selected = FeedbackType.SELECTION, args.select[0]
        else:
            raise ValueError(f"{request.feedback_id} takes one choice; --select was given {len(args.select)}")
    else:
        try:
            data = json.loads(args.data)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--data must be a JSON object: {exc}") from None
        response.response_type, response.custom_data = FeedbackType.CUSTOM, data
    return response


def _usage_for(request: FeedbackRequest) -> str:
    kind = request.feedback_type
    if kind is FeedbackType.APPROVAL:
        return "--approve or --reject [--reason R]"
    if kind is FeedbackType.TEXT:
        return "--text T"
    if kind is FeedbackType.SELECTION:
        return f"--select one of {request.options}"
    if kind is FeedbackType.MULTI_SELECTION:
        return f"--select S (repeated) among {request.options}"
    return "--data '{...}' (a JSON object)"


def respond_hint(request: FeedbackRequest, config: dict[str, Any]) -> str:
    """The command that answers ``request`` (with a placeholder answer of its kind)."""
    kind = request.feedback_type
    answer = {
        FeedbackType.APPROVAL: ["--approve"],
        FeedbackType.TEXT: ["--text", "..."],
        FeedbackType.SELECTION: ["--select", (request.options or ["..."])[0]],
        FeedbackType.MULTI_SELECTION: ["--select", (request.options or ["..."])[0]],
        FeedbackType.CUSTOM: ["--data", "{...}"],
    }[kind]
    return shlex.join(
        ["graflow", "feedback", "respond", request.feedback_id, *answer, *store_arguments(config)]
    )


def _print_next_step(out: Any, request: FeedbackRequest, config: dict[str, Any]) -> None:
    """Say what happens now: the task carries on, or its suspended run waits for ``graflow resume``."""
    try:
        status = store_for(config).run(request.run_id).status
    except RunNotFoundError:  # the run expired; its answer is stored all the same
        return
    if status is RunStatus.SUSPENDED:
        resume = shlex.join(["graflow", "resume", request.run_id, *store_arguments(config)])
        out.print(f"run {request.run_id} is suspended: `{resume}` carries it on with this answer")
    elif status is RunStatus.RUNNING:
        out.print(f"task {request.task_id!r} was waiting for it and carries on")


def _answer_text(response: FeedbackResponse) -> str:
    kind = FeedbackType(response.response_type)
    if kind is FeedbackType.APPROVAL:
        text = "approved" if response.approved else "rejected"
    elif kind is FeedbackType.TEXT:
        text = repr(response.text)
    elif kind is FeedbackType.SELECTION:
        text = f"selected {response.selected!r}"
    elif kind is FeedbackType.MULTI_SELECTION:
        text = f"selected {response.selected_multiple!r}"
    else:
        text = json.dumps(response.custom_data)
    if response.reason:
        text += f" ({response.reason})"
    if response.responded_by:
        text += f" by {response.responded_by}"
    return text


def _who() -> str:
    """``user@host`` of whoever runs the command, for ``responded_by``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container running as a bare uid)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
