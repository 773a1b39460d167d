#!/usr/bin/env python3
"""The PySpark side of the windowed-aggregation comparison (docs/benchmarks.md).

Spark Structured Streaming, local mode, reads the same order items the
analytics job reads (the `order_items` Parquet written by `orderstream
replay`) as a file stream, and computes the same pipeline as
analytics/pipelines/revenue_by_category_1m: revenue, distinct orders and units per
category and currency per tumbling 1-minute window on placed_at, watermark 5
s, appended to Parquet when windows close. Prints rows and rows per second
for each of RUNS runs (1 by default; each into OUTPUT_DIR/run-N when more),
then their median.

    bench-spark.py ORDER_ITEMS_DIR OUTPUT_DIR [RUNS]
"""
import statistics
import sys
import time

from pyspark.sql import SparkSession, functions as F


def main():
    source, output = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("orderstream-bench")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    schema = spark.read.parquet(source).schema
    rows = spark.read.parquet(source).count()
    items = spark.readStream.schema(schema).option("maxFilesPerTrigger", 1000).parquet(source)
    windows = (
        items.withWatermark("placed_at", "5 seconds")
        .groupBy(F.window("placed_at", "1 minute"), "category", "currency")
        # Structured Streaming has no exact distinct count; approx is what it offers.
        .agg(F.sum("line_total").alias("revenue"), F.approx_count_distinct("order_id").alias("orders"), F.sum("quantity").alias("units"))
        .select(F.col("window.start").alias("window_start"), F.col("window.end").alias("window_end"), "category", "currency", "revenue", "orders", "units")
    )
    rates = []
    for run in range(1, runs + 1):
        target = output if runs == 1 else f"{output}/run-{run}"
        started = time.time()
        query = (
            windows.writeStream.format("parquet")
            .option("path", target)
            .option("checkpointLocation", target + "/_checkpoint")
            .outputMode("append")
            .trigger(availableNow=True)
            .start()
        )
        query.awaitTermination()
        elapsed = time.time() - started
        rates.append(rows / elapsed)
        print(f"spark: {rows} rows in {elapsed:.2f} s = {rows / elapsed:.0f} rows/s", flush=True)
    if runs > 1:
        print(f"spark: median of {runs} runs = {statistics.median(rates):.0f} rows/s")
    spark.stop()


if __name__ == "__main__":
    main()
