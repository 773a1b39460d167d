-- A reason reads "code: words"; the code (the model's feature) is counted.
SELECT
    window_start,
    window_end,
    split_part(reason_text, ':', 1) AS reason,
    COUNT(*) AS orders,
    COUNT(*) FILTER (WHERE status = 'flagged') AS flagged
FROM (
    SELECT window_start, window_end, status, unnest(risk_reasons) AS reason_text
    FROM input
    WHERE kind = 'status_changed' AND from_status = 'pending'
)
GROUP BY window_start, window_end, split_part(reason_text, ':', 1)
