-- The fraud screen's verdicts and the reviews decided in each window (a
-- review falls in the window it was decided in, not the order's):
-- flagged share = flagged / screened; fraud rate = rejected / screened;
-- false-positive rate = approved / (approved + rejected).
SELECT
    window_start,
    window_end,
    COUNT(*) FILTER (WHERE from_status = 'pending') AS screened,
    COUNT(*) FILTER (WHERE from_status = 'pending' AND status = 'flagged') AS flagged,
    COUNT(*) FILTER (WHERE from_status = 'flagged' AND reason = 'fraud_rejected') AS rejected,
    COUNT(*) FILTER (WHERE from_status = 'flagged' AND (reason IS NULL OR reason <> 'fraud_rejected')) AS approved,
    AVG(risk_score) FILTER (WHERE from_status = 'pending') AS mean_risk
FROM input
WHERE kind = 'status_changed' AND from_status IN ('pending', 'flagged')
GROUP BY window_start, window_end
