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
    # columns that hold personal data: Delta keeps no min/max statistics of them in its log, so
    # an erasure that rewrites the data files and vacuums leaves no trace of a value anywhere
    personal: tuple[str, ...] = field(default_factory=tuple)
    properties: dict[str, str] = field(default_factory=dict)
    # columns lakecast maintain clusters the files by (Z-order): what readers filter on
    zorder_by: tuple[str, ...] = field(default_factory=tuple)

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.schema.fields]

    @property
    def table_properties(self) -> dict[str, str]:
        """Delta table properties set when the table is created."""
        props = dict(self.properties)
        if self.personal:
            props["delta.dataSkippingStatsColumns"] = ",".join(
                c for c in self.columns if c not in self.personal
            )
        return props
