SELECT
    window_start,
    window_end,
    currency,
    SUM(total) AS revenue,
    COUNT(*) AS orders,
    AVG(total) AS average_order_value
FROM input
GROUP BY window_start, window_end, currency
