"""Model instances from rows of a statement built once per process (the hot paths' reads: the
outbound call's active credential, outbound/credrows.py, and the proxy's key lookup,
services/appkeys.py), read as the ORM would: each field's database converters (JSON, the
encrypted secret, dates on SQLite), looked up once, then Model.from_db."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Columns:
    """Part of a row: where it starts and ends, the fields' attribute names, and the database
    converters of the fields that have any."""

    start: int
    stop: int
    attnames: list[str]
    converters: list[tuple[int, object, list]]  # (index in the part, column, converters)

    def values(self, db, row) -> list:
        """This part of the row as the ORM would load it."""
        values = list(row[self.start:self.stop])
        for index, col, converters in self.converters:
            value = values[index]
            for convert in converters:
                value = convert(value, col, db)
            values[index] = value
        return values

    def instance(self, model, db, row):
        """The model instance this part of the row holds."""
        return model.from_db(db.alias, self.attnames, self.values(db, row))


def columns(db, fields, start: int = 0) -> Columns:
    """The Columns of `fields`, selected in this order from index `start` of a row."""
    plan = []
    for index, field in enumerate(fields):
        col = field.get_col(field.model._meta.db_table)
        converters = db.ops.get_db_converters(col) + col.get_db_converters(db)
        if converters:
            plan.append((index, col, converters))
    return Columns(start, start + len(fields), [f.attname for f in fields], plan)
