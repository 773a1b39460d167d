SELECT
    window_start,
    window_end,
    category,
    currency,
    SUM(line_total) AS revenue,
    COUNT(DISTINCT order_id) AS orders,
    SUM(quantity) AS units
FROM input
GROUP BY window_start, window_end, category, currency
