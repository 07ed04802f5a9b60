"""The GraphQL schema the LeanIX simulator serves, and the model values it accepts.

Fact sheet types, lifecycle phases, quality states and statuses; the SDL of the subset we
serve (factSheet, updateFactSheet, createComment); and queries parsed and validated once.
`BaseFactSheet.field(key:)` exists only here: it reads any field a patch stored.
"""

from __future__ import annotations

import functools

from graphql import DocumentNode, GraphQLError, build_schema, parse, validate

FACT_SHEET_TYPES = (
    "Application",
    "BusinessCapability",
    "DataObject",
    "Interface",
    "ITComponent",
    "Process",
    "Project",
    "Provider",
    "TechnicalStack",
    "UserGroup",
)
PHASES = ("plan", "phaseIn", "active", "phaseOut", "endOfLife")
LX_STATES = frozenset({"BROKEN_QUALITY_SEAL", "DRAFT", "REJECTED", "APPROVED"})
STATUSES = frozenset({"ACTIVE", "ARCHIVED"})
TYPED_FIELDS = ("alias", "release", "businessCriticality", "functionalSuitability")

_BASE_FIELDS = """
    id: ID!
    rev: Long!
    name: String!
    displayName: String
    fullName: String
    type: String!
    status: FactSheetStatus!
    description: String
    lxState: String
    tags: [Tag!]!
    createdAt: String
    updatedAt: String
    "Simulator only: the raw value a patch stored at /<key>."
    field(key: String!): String
"""
_TYPE_FIELDS = "lifecycle: Lifecycle\n" + "".join(f"    {f}: String\n" for f in TYPED_FIELDS)
_TYPES = "\n".join(
    f"type {t} implements BaseFactSheet {{ {_BASE_FIELDS} {_TYPE_FIELDS} }}"
    for t in FACT_SHEET_TYPES
)

SDL = f"""
scalar Long
enum PatchOperation {{ add replace remove }}
enum CommentStatus {{ ACTIVE CLOSED }}
enum FactSheetStatus {{ ACTIVE ARCHIVED }}
input Patch {{ op: PatchOperation! path: String! value: String }}
type Tag {{ id: ID! name: String! }}
type LifecyclePhase {{ phase: String! startDate: String }}
type Lifecycle {{ asString: String phases: [LifecyclePhase!]! }}
interface BaseFactSheet {{ {_BASE_FIELDS} }}
{_TYPES}
type UpdateResult {{ factSheet: BaseFactSheet }}
type Comment {{ id: ID! message: String! status: CommentStatus factSheetId: ID createdAt: String }}
input FacetFilter {{ facetKey: String! operator: String keys: [String!] }}
input FilterInput {{ facetFilters: [FacetFilter] fullTextSearch: String }}
type PageInfo {{ hasNextPage: Boolean! endCursor: String }}
type FactSheetEdge {{ node: BaseFactSheet }}
type FactSheetConnection {{ totalCount: Int! pageInfo: PageInfo! edges: [FactSheetEdge!]! }}
type Query {{
  factSheet(id: ID!): BaseFactSheet
  allFactSheets(first: Int, after: String, filter: FilterInput): FactSheetConnection
}}
type Mutation {{
  updateFactSheet(
    id: ID!, rev: Long, comment: String, patches: [Patch]!, validateOnly: Boolean
  ): UpdateResult
  createComment(factSheetId: ID!, message: String!, status: CommentStatus): Comment
}}
"""
SCHEMA = build_schema(SDL)


@functools.lru_cache(maxsize=256)
def document(query: str) -> DocumentNode | tuple[GraphQLError, ...]:
    """A query parsed and validated once (a client sends the same few documents again and
    again, the batch of 25 updates included), or why it cannot run."""
    try:
        parsed = parse(query)
    except GraphQLError as exc:
        return (exc,)
    errors = validate(SCHEMA, parsed)
    return tuple(errors) if errors else parsed
