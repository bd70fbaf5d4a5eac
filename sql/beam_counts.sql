-- Segments per beam, and how many pass the quality filter.
-- magg sql --files 'data/*.h5' "$(cat sql/beam_counts.sql)"
SELECT
    beam,
    count(*) AS segments,
    sum(CASE WHEN atl06_quality_summary = 0 THEN 1 ELSE 0 END) AS good
FROM atl06
GROUP BY beam
ORDER BY beam
