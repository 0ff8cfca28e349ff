"""Whole batches written as arrays: one statement whose text never changes.

``INSERT ... VALUES (...), (...), ...`` is a new statement for every batch
size: SQLAlchemy compiles it again and asyncpg prepares it again (in the
webhooks service that compilation was 28 % of its CPU while links were
created, py-spy). ``INSERT ... SELECT * FROM unnest(:a, :b, ...)`` takes a
batch of any size as one array per column, so its text is compiled and
prepared once per connection. The same holds for ``= ANY(:codes)`` against
``IN (...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, any_, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import ARRAY, Insert, insert
from sqlalchemy.sql.elements import SQLCoreOperations
from sqlalchemy.types import TypeEngine

__all__ = ["any_of", "columns", "insert_from_arrays"]

Row = tuple[Any, ...]


def insert_from_arrays(table: Table, names: Sequence[str]) -> Insert:
    """``INSERT INTO table (names) SELECT * FROM unnest(:name1, :name2, ...)``."""
    arrays = [cast(bindparam(n), ARRAY(table.c[n].type)) for n in names]
    source = func.unnest(*arrays).table_valued(*names).render_derived()
    return insert(table).from_select(list(names), select(*source.c))


def columns(names: Sequence[str], rows: Sequence[Row]) -> dict[str, list[Any]]:
    """Rows turned into one list per column, the shape ``unnest`` takes."""
    return {name: list(values) for name, values in zip(names, zip(*rows, strict=True), strict=True)}


def any_of(
    column: SQLCoreOperations[Any], name: str, item_type: TypeEngine[Any]
) -> ColumnElement[bool]:
    """``column = ANY(CAST(:name AS type[]))``: the list is one parameter."""
    return column == any_(cast(bindparam(name), ARRAY(item_type)))
