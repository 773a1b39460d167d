SELECT
    window_start,
    window_end,
    customer_id,
    currency,
    COUNT(*) AS orders,
    SUM(total) AS revenue,
    SUM(unit_count) AS units,
    MIN(placed_at) AS first_order_at,
    MAX(placed_at) AS last_order_at
FROM input
GROUP BY window_start, window_end, customer_id, currency
