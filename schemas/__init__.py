"""Table contracts: one per lake table, with types, nullability, comments and partitioning.

Jobs create tables from these objects and the data dictionary is generated from them. This
package imports nothing from ``jobs`` but the shared names of :mod:`jobs.core`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql.types import DataType, StructField, StructType


def col(name: str, dtype: DataType, comment: str, nullable: bool = True) -> StructField:
    """A column with its comment stored in the field metadata (Delta and Hive show it)."""
    return StructField(name, dtype, nullable, metadata={"comment": comment})


@dataclass(frozen=True)
class TableContract:
    """What a table holds: schema, partition columns and a one-line description."""

    schema: StructType
    comment: str
    partition_by: tuple[str, ...] = field(default_factory=tuple)

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.schema.fields]
