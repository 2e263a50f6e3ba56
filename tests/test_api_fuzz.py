"""API fuzzing: schemathesis generates requests for every operation of the OpenAPI document
(valid and invalid bodies, parameters, ids) and sends them to a real daphne with the real
database. No request may cause a 500, and every response must match the document's schema."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(300),
]

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture
def fuzz_target(daphne_server: str, demo_committed: Any) -> dict[str, str]:
    """The demo township committed in the test database (the server is another process), and
    an administrator's API token: the widest scope, so every operation reaches its handler
    rather than stopping at 403."""
    from command.org.models import User
    from command.org.tokens import api_token_create

    _, raw = api_token_create(user=User.objects.get(username="admin"), name="fuzz")
    return {"base": daphne_server, "token": raw}


def test_api_answers_every_generated_request_without_a_server_error(
    fuzz_target: dict[str, str],
) -> None:
    # Driven through schemathesis' Python API, one hypothesis run per operation (its lazy pytest
    # fixture does not work with this pytest), and every operation's failures reported together.
    schema = schemathesis.openapi.from_url(
        f"{fuzz_target['base']}/api/v1/openapi.json", wait_for_schema=20
    )
    headers = {"Authorization": f"Bearer {fuzz_target['token']}"}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        # Valid requests and invalid ones (wrong types, out-of-range values, missing fields).
        @given(
            case=operation.as_strategy(GenerationMode.POSITIVE)
            | operation.as_strategy(GenerationMode.NEGATIVE)
        )
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            case.call_and_validate(base_url=fuzz_target["base"], headers=headers, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # all operations, reported together
            failures.append(f"{operation.label}: {exc}")
    assert operations >= 20, f"only {operations} operations in the OpenAPI document"
    assert not failures, "\n\n".join(failures)
