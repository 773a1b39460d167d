#!/usr/bin/env python3
"""Reads every table of an orderstream data directory with readers that are
not ours -- pyarrow.dataset and DuckDB, each decoding every value -- and
prints each table's row count per reader as JSON. Exits 1 when a reader
fails or the two disagree.

    read_tables.py DATA_DIR
"""
import json
import os
import sys

import duckdb
import pyarrow.dataset as ds


def tables(root):
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if name.startswith(("_", ".")) or not os.path.isdir(path):
            continue
        has_parquet = any(f.endswith(".parquet") for _, _, files in os.walk(path) for f in files)
        if has_parquet:
            yield name, path


def main():
    root = sys.argv[1]
    counts = {}
    con = duckdb.connect()
    for name, path in tables(root):
        dataset = ds.dataset(path, format="parquet", partitioning="hive")
        arrow_rows = dataset.to_table().num_rows
        glob = os.path.join(path, "**", "*.parquet")
        duck_rows = con.execute(
            f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)"
        ).fetchone()[0]
        columns = con.execute(
            f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true) LIMIT 1"
        ).description
        # Every value of every column decoded (a count alone reads only the
        # footers): each Parquet encoding we write must be readable here.
        touch_all = ", ".join(f'sum(length(CAST("{c[0]}" AS VARCHAR)))' for c in columns)
        con.execute(f"SELECT {touch_all} FROM read_parquet('{glob}', hive_partitioning = true)").fetchone()
        counts[name] = {"pyarrow": arrow_rows, "duckdb": duck_rows, "columns": len(columns)}
        if arrow_rows != duck_rows:
            print(json.dumps(counts), file=sys.stderr)
            sys.exit(f"{name}: pyarrow reads {arrow_rows} rows, duckdb {duck_rows}")
    print(json.dumps(counts, sort_keys=True))


if __name__ == "__main__":
    main()
