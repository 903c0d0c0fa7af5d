"""The CAD API keeps its OpenAPI document true: schemathesis (not our code) drives the live app from it."""
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from fieldapp.api.keys import create_key
from fieldapp.districts import save_centre
from fieldapp.store.db import connect


@pytest.fixture
def api_schema(live_server):
    """The live app's own OpenAPI document, with a key holding every scope."""
    db = connect(live_server.config["DATABASE"])
    save_centre(db, "North", 35.2, -90.0)
    with live_server.app_context():
        key = create_key(db, "schemathesis", ["requests:read", "requests:write"])
    db.close()
    schema = schemathesis.openapi.from_url(f"{live_server.base_url}/api/v1/openapi.json")
    schema.key = key
    return schema


def test_every_response_matches_the_openapi_document(api_schema):
    # Each operation in turn, a bounded number of examples each (the pytest plugin's
    # from_fixture does not run under this pytest).
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 4
    headers = {"Authorization": f"Bearer {api_schema.key}"}
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def responds_as_documented(case):
            case.call_and_validate(headers=headers)

        responds_as_documented()


def test_the_document_is_openapi_3_1_with_the_webhook_payload(client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"] == "3.1.0"
    assert doc["webhooks"]["requestChanged"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WebhookEvent"}
