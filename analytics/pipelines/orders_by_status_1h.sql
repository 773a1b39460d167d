SELECT
    window_start,
    window_end,
    status,
    currency,
    COUNT(DISTINCT order_id) AS orders,
    SUM(order_total) AS order_value
FROM input
WHERE kind = 'status_changed'
GROUP BY window_start, window_end, status, currency
