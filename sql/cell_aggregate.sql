-- The query a pipeline config compiles to for one parent cell: what `magg compile` prints
-- and what `magg run` executes for every cell of the catalog.
--
-- Placeholders, filled by src/config/compile.rs:
--   {cell}        the output cell of a row. Like the reference, the order-18 cell is
--                 computed once and both the child and the parent cell derive from it, so
--                 a point on a cell edge lands in the same cell as in the reference. The
--                 granule table's column cell18 holds it (= healpix_cell(latitude,
--                 longitude, 18) in the config's latitude mode), hashed by the scan while
--                 it finds the rows of the parent cell, so SQL does not hash again.
--   {aggregates}  one aggregate expression per aggregation variable, in config order
--   {table}       the granule table (the config's name, e.g. atl06)
--   {where}       the quality filter and the parent-cell predicate; the granule table
--                 recognises both and applies them while reading (see EXPLAIN)
SELECT
    {cell} AS cell,
    {aggregates}
FROM {table}
WHERE {where}
GROUP BY 1
ORDER BY 1
