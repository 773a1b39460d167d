SELECT
    window_start,
    window_end,
    product_id,
    currency,
    SUM(line_total) AS revenue,
    SUM(quantity) AS units
FROM input
GROUP BY window_start, window_end, product_id, currency
