-- Per granule: segments, share flagged by atl06_quality_summary, fill values in h_li
-- (NULL in the table), and the height range of the good rows.
-- magg sql --catalog catalog.json "$(cat sql/quality_report.sql)"
SELECT
    granule,
    count(*) AS segments,
    round(100.0 * sum(CASE WHEN atl06_quality_summary <> 0 THEN 1 ELSE 0 END) / count(*), 2) AS flagged_pct,
    count(*) - count(h_li) AS h_li_fill,
    min(CASE WHEN atl06_quality_summary = 0 THEN h_li END) AS h_min,
    max(CASE WHEN atl06_quality_summary = 0 THEN h_li END) AS h_max
FROM atl06
GROUP BY granule
ORDER BY granule
