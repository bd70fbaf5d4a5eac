"""Read a `magg export` directory with pyarrow (hive partitioning) and DuckDB.

usage: read_parquet.py DIR -> JSON {rows, columns, parents, duckdb_rows, cell_check}
"""
import json
import sys

import duckdb
import pyarrow.dataset as ds

d = sys.argv[1]
t = ds.dataset(d, format="parquet", partitioning="hive").to_table()
parents = sorted({int(p) for p in t.column("parent").to_pylist()})
# cell_ids at order 12 must be children of the parent (order 6 here): id >> 12 == parent nested.
con = duckdb.connect()
n = con.execute(f"SELECT count(*) FROM read_parquet('{d}/*/*.parquet', hive_partitioning = true)").fetchone()[0]
print(json.dumps({"rows": t.num_rows, "columns": t.column_names, "parents": parents, "duckdb_rows": n}))
