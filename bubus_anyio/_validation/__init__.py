"""Strict checks (layer 1, the lowest): Python type annotations and JSON Schemas, both ways.

``_types`` compiles checks of values against Python annotations and holds the primitives both checkers
share; ``_schema`` turns a result type into JSON Schema; ``_schema_checks`` compiles checks against JSON
Schemas that arrive from other runtimes. Imports nothing else of bubus_anyio.
"""
