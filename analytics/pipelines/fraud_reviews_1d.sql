-- Every status event that puts an order into fraud review or takes it out
-- (approved or rejected), per day: the dashboard's fraud queue reads these
-- few rows instead of every status event of the last weeks.
SELECT
    window_start,
    window_end,
    order_id,
    customer_id,
    status,
    from_status,
    risk_score,
    risk_reasons,
    order_total,
    currency,
    occurred_at,
    stream_seq
FROM input
WHERE status = 'flagged' OR from_status = 'flagged'
