"""schemathesis against a provider's served OpenAPI document: every operation with generated valid
and invalid input, then the stateful links (create -> get -> capture -> refund ...).

Budget: ``PSP_FUZZ_EXAMPLES`` examples per operation and mode (CI default small), and
``PSP_FUZZ_STEPS`` state-machine scenarios. Generation is derandomized, so a run repeats exactly.
"""
from __future__ import annotations

import os

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis import GenerationMode
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)
from schemathesis.specs.openapi.checks import ensure_resource_availability, use_after_free

EXAMPLES = int(os.environ.get("PSP_FUZZ_EXAMPLES", "6"))
STEPS = int(os.environ.get("PSP_FUZZ_STEPS", "8"))
# what the sandbox promises of any input: never a 5xx, and only documented statuses, content types
# and bodies. (Positive-data acceptance is not asked: a JSON schema cannot say "Luhn-valid card number",
# so the provider's validation error is a correct answer to some schema-valid bodies.)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
STATEFUL_CHECKS = CHECKS + [use_after_free, ensure_resource_availability]


def settings(count: int) -> hypothesis.settings:
    return hypothesis.settings(max_examples=count, derandomize=True, database=None, deadline=None,
                               suppress_health_check=list(HealthCheck), print_blob=False,
                               phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])


def load(server_url: str, mount: str):
    return schemathesis.openapi.from_url(f"{server_url}{mount}/openapi.json")


def fuzz_operations(schema, session: requests.Session, *, skip=lambda op: False) -> list[str]:
    """Every operation, valid and invalid input; returns what was exercised, raises on a failure."""
    ran = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if skip(operation):
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(EXAMPLES)
            def run(case):
                case.call_and_validate(session=session, checks=CHECKS, timeout=30)
            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                if mode is GenerationMode.POSITIVE:
                    raise
                # nothing to make invalid (a credential-free GET whose only input is a string id)
        ran.append(operation.label)
    return ran


def fuzz_links(schema, session: requests.Session, reset_url: str) -> None:
    """Random walks along the documented (and schemathesis' inferred) links, checking every answer.
    Each walk starts from an empty sandbox, so a failing walk replays the same way when shrunk."""
    base = schema.as_state_machine()

    class Links(base):
        def setup(self):
            requests.post(reset_url, timeout=30).raise_for_status()

        def get_call_kwargs(self, case):
            return {"session": session, "timeout": 30}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=STATEFUL_CHECKS)

    Links.run(settings=hypothesis.settings(settings(STEPS), stateful_step_count=6))


def _evaluate(expression, request_path: dict, body):
    """A link's runtime expression; anything else is a literal. KeyError when it does not apply."""
    if not isinstance(expression, str) or not expression.startswith("$"):
        return expression
    if expression.startswith("$request.path."):
        return request_path[expression[len("$request.path."):]]
    if expression.startswith("$response.body#/"):
        value = body
        for part in expression[len("$response.body#/"):].split("/"):
            value = value[int(part)] if isinstance(value, list) else value[part]
        if value is None:
            raise KeyError(expression)
        return value
    raise ValueError(f"unsupported link expression {expression}")


def walk_links(schema, doc: dict, session: requests.Session, start: list[tuple[str, str]],
               depth: int = 4) -> list[tuple[str, int]]:
    """From each start operation, call it with its documented example and follow every documented
    link of the answer depth-first, checking each answer. Returns (operationId, status) in call order."""
    by_id = {op["operationId"]: (path, method) for path, item in doc["paths"].items()
             for method, op in item.items() if isinstance(op, dict) and "operationId" in op}
    visited: list[tuple[str, int]] = []

    def visit(path: str, method: str, params: dict, level: int, body_from_link=None) -> None:
        spec = doc["paths"][path][method]
        example = ((spec.get("requestBody") or {}).get("content", {}).get("application/json") or {}).get("example")
        if body_from_link is not None:
            example = {**(example or {}), **body_from_link}
        operation = schema[path][method.upper()]
        case = operation.Case(path_parameters=params or None, **({"body": example} if example is not None else {}),
                              media_type="application/json" if example is not None else None)
        response = case.call_and_validate(session=session, checks=CHECKS, timeout=30)
        visited.append((spec["operationId"], response.status_code))
        if level >= depth:
            return
        links = spec["responses"].get(str(response.status_code), {}).get("links", {})
        body = response.json() if response.content else None
        for link in links.values():
            target_path, target_method = by_id[link["operationId"]]
            link_body = link.get("requestBody")
            try:
                target_params = {k: _evaluate(v, params, body) for k, v in link.get("parameters", {}).items()}
                target_body = {k: _evaluate(v, params, body) for k, v in link_body.items()} if link_body else None
            except KeyError:
                continue   # the answer lacks what the link needs (a hosted payment has no transaction yet)
            visit(target_path, target_method, target_params, level + 1, target_body)

    for path, method in start:
        visit(path, method, {}, 0)
    return visited
