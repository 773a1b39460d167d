SELECT
    window_start,
    window_end,
    currency,
    SUM(total) AS revenue,
    COUNT(*) AS orders
FROM input
GROUP BY window_start, window_end, currency
