"""The admin route list and the schemas derived from it: what the document is built from.

tests/integration/test_openapi.py holds the built document to the live app; these hold
its sources together, so a renamed field or an undocumented handler fails here first.
"""

from __future__ import annotations

import dataclasses

import jsonschema_rs

from service.admin import bodies, openapi_admin
from service.admin.openapi_schemas import REFINED
from service.admin.routes import ROUTES


def test_every_refinement_names_a_field_of_its_class() -> None:
    for cls, name in REFINED:
        assert name in {f.name for f in dataclasses.fields(cls)}, (cls.__name__, name)


def test_every_route_answers_a_documented_body() -> None:
    for route in ROUTES:
        assert route.summary, f"{route.name} needs a docstring: it is the summary"
        assert dataclasses.is_dataclass(route.answer), route.name
        assert route.answer.__module__ == bodies.__name__, route.name
        written = not (route.answer.__doc__ or "(").startswith(f"{route.answer.__name__}(")
        assert written, f"{route.answer.__name__} needs a docstring: it describes the answer"


def test_one_route_per_method_and_path() -> None:
    assert len({(route.method, route.path) for route in ROUTES}) == len(ROUTES)


def test_every_derived_schema_is_json_schema_2020_12() -> None:
    for name, schema in openapi_admin.schemas().items():
        assert jsonschema_rs.meta.is_valid(schema), name
        if schema.get("required"):
            assert set(schema["required"]) <= set(schema["properties"]), name
