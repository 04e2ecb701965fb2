"""The API fuzzed against its own OpenAPI description (SPEC 20): whatever is sent, never a 500.

Schemathesis generates requests for every operation of ``/openapi.json`` (valid ones and
ones that break the schema) and sends them to the app over a store that holds real runs.
The live streams are left out: they answer for as long as the client listens.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from graflow_ui.app import create_app
from graflow_ui.settings import UISettings
from tests.ui.conftest import run_flow

#: Examples per operation: enough to find a 500, few enough for the whole suite to take seconds.
EXAMPLES = int(os.environ.get("GRAFLOW_UI_FUZZ_EXAMPLES", "40"))


def _app() -> object:
    state = Path(tempfile.mkdtemp(prefix="graflow-ui-fuzz-"))
    for flow in ("review", "broken"):
        run_flow(state, flow)
    settings = UISettings(store_config={"state_dir": str(state)}, log_dir=state / "ui-logs")
    return create_app(settings)


schema = schemathesis.openapi.from_asgi("/openapi.json", _app(), headers={"Host": "127.0.0.1:8265"}).exclude(
    path_regex="^/api/events/"
)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_api_answer_500(case: schemathesis.Case) -> None:
    response = case.call(headers={"X-Graflow-Request": "1", "Host": "127.0.0.1:8265"})
    case.validate_response(response, checks=[not_a_server_error])
