"""Our GraphQL mutations held to the signatures of a contract's partial SDL.

The LeanIX contract publishes no full schema, only the mutations it documents (an SDL
string in its `graphql` section). So a request is not validated as a whole: each mutation
field we call must exist there; its arguments must be the SDL's, the required ones given;
a variable bound to an argument must be declared with the argument's type and carry a
value of that type (input objects and enums included); an enum literal must be a value of
its enum. Reads (`query` operations) are outside the SDL, which documents mutations only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    ArgumentNode,
    EnumTypeDefinitionNode,
    EnumValueNode,
    FieldNode,
    GraphQLError,
    InputObjectTypeDefinitionNode,
    ListTypeNode,
    NamedTypeNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    OperationDefinitionNode,
    OperationType,
    TypeNode,
    VariableNode,
    parse,
    print_ast,
)

from tests.contracts.contract import problems

SCALARS: Mapping[str, dict[str, Any]] = {
    "String": {"type": "string"},
    "ID": {"type": ["string", "integer"]},
    "Long": {"type": "integer"},
    "Int": {"type": "integer"},
    "Boolean": {"type": "boolean"},
    "Float": {"type": "number"},
}


class Sdl:
    """The enums, input types and mutation signatures of an SDL text."""

    def __init__(self, text: str) -> None:
        document = parse(text)
        self.enums: dict[str, list[str]] = {}
        self.inputs: dict[str, dict[str, TypeNode]] = {}
        self.mutations: dict[str, dict[str, TypeNode]] = {}
        for node in document.definitions:
            if isinstance(node, EnumTypeDefinitionNode):
                self.enums[node.name.value] = [v.name.value for v in node.values or ()]
            elif isinstance(node, InputObjectTypeDefinitionNode):
                self.inputs[node.name.value] = {f.name.value: f.type for f in node.fields or ()}
            elif isinstance(node, ObjectTypeDefinitionNode) and node.name.value == "Mutation":
                self.mutations = {
                    f.name.value: {a.name.value: a.type for a in f.arguments or ()}
                    for f in node.fields or ()
                }

    def schema(self, node: TypeNode) -> dict[str, Any]:
        """The JSON Schema of values of an SDL type."""
        if isinstance(node, NonNullTypeNode):
            return self._strict(node.type)
        return {"anyOf": [self._strict(node), {"type": "null"}]}

    def _strict(self, node: TypeNode) -> dict[str, Any]:
        if isinstance(node, ListTypeNode):
            return {"type": "array", "items": self.schema(node.type)}
        assert isinstance(node, NamedTypeNode)
        name = node.name.value
        if name in self.enums:
            return {"enum": self.enums[name]}
        if name in self.inputs:
            return self._input(name)
        return dict(SCALARS.get(name, {}))

    def _input(self, name: str) -> dict[str, Any]:
        fields = self.inputs[name]
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {key: self.schema(kind) for key, kind in fields.items()},
            "required": [k for k, kind in fields.items() if isinstance(kind, NonNullTypeNode)],
            "additionalProperties": False,
        }
        if name == "Patch":  # the SDL's own comment: `value` is "omitted for remove"
            remove = {"properties": {"op": {"const": "remove"}}, "required": ["op"]}
            schema |= {"if": remove, "then": {"not": {"required": ["value"]}}}
        return schema

    def request_problems(self, request: Any, where: str) -> list[str]:
        """What about a GraphQL request body the SDL's mutation signatures do not allow."""
        if not isinstance(request, dict) or not isinstance(request.get("query"), str):
            return []  # the request schema reports it
        try:
            document = parse(request["query"])
        except GraphQLError as exc:
            return [f"{where}: the query does not parse: {exc.message}"]
        variables = request.get("variables") or {}
        found: list[str] = []
        for operation in document.definitions:
            is_mutation = isinstance(operation, OperationDefinitionNode) and (
                operation.operation == OperationType.MUTATION
            )
            if is_mutation:
                found += self._operation_problems(operation, variables, where)
        return found

    def _operation_problems(
        self, operation: OperationDefinitionNode, variables: Mapping[str, Any], where: str
    ) -> list[str]:
        declared = {v.variable.name.value: v.type for v in operation.variable_definitions or ()}
        found: list[str] = []
        for field in operation.selection_set.selections:
            if not isinstance(field, FieldNode):
                continue
            signature = self.mutations.get(field.name.value)
            if signature is None:
                found.append(f"{where}: mutation {field.name.value} is not in the contract")
                continue
            given = {arg.name.value: arg for arg in field.arguments or ()}
            found += [
                f"{where}: {field.name.value} needs {name}"
                for name, kind in signature.items()
                if isinstance(kind, NonNullTypeNode) and name not in given
            ]
            for arg in given.values():
                found += self._argument_problems(
                    field.name.value, arg, signature, declared, variables, where
                )
        return found

    def _argument_problems(
        self,
        mutation: str,
        arg: ArgumentNode,
        signature: Mapping[str, TypeNode],
        declared: Mapping[str, TypeNode],
        variables: Mapping[str, Any],
        where: str,
    ) -> list[str]:
        name = arg.name.value
        kind = signature.get(name)
        here = f"{where}: {mutation}({name})"
        if kind is None:
            return [f"{here}: no such argument in the contract"]
        if isinstance(arg.value, EnumValueNode):
            allowed = self.schema(kind)
            return problems({}, allowed, arg.value.value, here)
        if not isinstance(arg.value, VariableNode):
            return []  # other literals: the server parses them; the SDL gives only types
        variable = arg.value.name.value
        found = []
        if not _fits(declared.get(variable), kind):
            found.append(f"{here}: ${variable} is not declared as {print_ast(kind)}")
        return found + problems({}, self.schema(kind), variables.get(variable), here)


def _fits(declared: TypeNode | None, wanted: TypeNode) -> bool:
    """Whether a variable of type `declared` may be passed where `wanted` is expected."""
    if declared is None:
        return False
    if print_ast(declared) == print_ast(wanted):
        return True
    nullable_wanted = not isinstance(wanted, NonNullTypeNode)
    return (
        nullable_wanted
        and isinstance(declared, NonNullTypeNode)
        and print_ast(declared.type) == print_ast(wanted)
    )
