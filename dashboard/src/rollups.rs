//! Aggregates over a time range, read from the pipeline that computes them
//! where it can and from its source table for the rest.
//! `revenue_by_category_*` is exactly the revenue endpoint's rows,
//! `revenue_by_product_1d` the best sellers' and `fraud_reviews_1d` the
//! fraud queue's: a few rows per window against millions of item rows or
//! status events over a month. A window comes from the pipeline when it
//! lies whole inside the range, has a final emission (its latest version is
//! read), and no event of it went to `late_events` (those are in the source
//! but not in the pipeline's rows). Every other window — the open ones,
//! history no pipeline has summarised — is read from the source. Either way
//! the answer is the source's to the cent; answers say how many windows
//! came from the pipeline.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use analytics::pipeline::{PipelineSpec, Windowing};
use analytics::window::WindowKind;
use chrono::{DateTime, Duration, Utc};
use schemas::Amount;
use schemas::rollups::Rollup;
use schemas::tables::Table;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Dashboard;
use crate::params::{partitions, ts_sql};
use crate::sql_rows::{has, rows};
use server::http::HttpError;

/// One of the dashboard's revenue windows.
#[derive(Clone, Copy, Debug)]
pub struct RevenueWindow {
    /// As SQL's `INTERVAL '…'`.
    pub interval: &'static str,
    pub size: Duration,
    /// The range asked for when none is given, and the longest allowed.
    pub default_span: Duration,
    pub max_span: Duration,
}

/// One window's sales of one category.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct RevenueRow {
    pub window_start: DateTime<Utc>,
    pub category: String,
    pub revenue: Amount,
    pub units: i64,
}

/// How a set of windows was served: how many came from the pipeline's
/// output (the rest were computed from the base tables), and which
/// pipeline serves the figure (none: every window from the base tables).
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Served {
    pub windows_from_pipeline: usize,
    pub pipeline: Option<String>,
}

/// Which pipeline output answers which figure at which window size, read
/// from the pipelines' manifests (`serves = "…"`): a page never names a
/// pipeline, so a `--pipelines DIR` without one serves that figure from
/// the base tables instead of reading a table that is not there.
#[derive(Clone, Debug, Default)]
pub struct RollupTables(BTreeMap<(Rollup, i64), String>);

impl RollupTables {
    /// From the pipelines the analytics job runs; two serving one figure
    /// at one window size is a mistake in the set, named at start.
    pub fn from_specs(specs: &[Arc<PipelineSpec>]) -> Result<RollupTables, String> {
        let mut tables = BTreeMap::new();
        for spec in specs {
            let (Some(rollup), Windowing::Fixed(WindowKind::Tumbling { size_ms })) = (spec.serves, &spec.windowing)
            else {
                continue;
            };
            if let Some(other) = tables.insert((rollup, *size_ms), spec.output.clone()) {
                return Err(format!(
                    "pipelines {other} and {} both serve {rollup} at one window size; keep one",
                    spec.output
                ));
            }
        }
        Ok(RollupTables(tables))
    }

    /// The shipped pipelines' (`analytics/pipelines/`, built in).
    pub fn builtin() -> RollupTables {
        let specs: Vec<Arc<PipelineSpec>> = analytics::builtin::builtin_pipelines()
            .map(|specs| specs.into_iter().map(Arc::new).collect())
            .unwrap_or_default();
        RollupTables::from_specs(&specs).unwrap_or_default()
    }

    /// The output table serving `rollup` at windows of `size`.
    pub fn table(&self, rollup: Rollup, size: Duration) -> Option<&str> {
        self.0.get(&(rollup, size.num_milliseconds())).map(String::as_str)
    }

    /// Every figure served, with its window size and table.
    pub fn iter(&self) -> impl Iterator<Item = (Rollup, Duration, &str)> {
        self.0.iter().map(|((rollup, ms), table)| (*rollup, Duration::milliseconds(*ms), table.as_str()))
    }
}

pub const WINDOWS: [(&str, RevenueWindow); 3] = [
    (
        "1m",
        RevenueWindow {
            interval: "1 minute",
            size: Duration::minutes(1),
            default_span: Duration::hours(1),
            max_span: Duration::days(1),
        },
    ),
    (
        "1h",
        RevenueWindow {
            interval: "1 hour",
            size: Duration::hours(1),
            default_span: Duration::hours(24),
            max_span: Duration::days(31),
        },
    ),
    (
        "1d",
        RevenueWindow {
            interval: "1 day",
            size: Duration::days(1),
            default_span: Duration::days(30),
            max_span: Duration::days(366),
        },
    ),
];

impl RevenueWindow {
    /// The start of the window `t` falls in: the pipelines' own window
    /// arithmetic (aligned to the epoch, as `date_bin`'s is too).
    pub fn floor(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let tumbling = WindowKind::Tumbling { size_ms: self.size.num_milliseconds() };
        tumbling
            .windows_of(t.timestamp_millis())
            .next()
            .and_then(|w| DateTime::from_timestamp_millis(w.start_ms))
            .unwrap_or(t)
    }

    /// The first window boundary at or after `t`.
    pub fn ceil(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let start = self.floor(t);
        if start == t { t } else { start + self.size }
    }
}

/// Which windows of a range a pipeline's output answers, and what is left.
pub struct Coverage {
    /// The output table serving the figure, if one does.
    pipeline: Option<String>,
    /// The table the figure is computed from where no window is covered.
    source: Table,
    size: Duration,
    /// Window starts, ascending, each with its latest final version.
    covered: Vec<(DateTime<Utc>, i64)>,
    uncovered: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Coverage {
    pub async fn of(
        state: &Dashboard,
        rollup: Rollup,
        size: Duration,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Coverage, HttpError> {
        let source = rollup.source();
        let Some(pipeline) = state.settings.rollups.table(rollup, size).map(str::to_string) else {
            let uncovered = uncovered_ranges(size, from, to, &[]);
            return Ok(Coverage { pipeline: None, source, size, covered: Vec::new(), uncovered });
        };
        let covered = match state.coverage.get(state, &pipeline, from, to).await? {
            (Some(covered), _) => covered,
            (None, fingerprint) => {
                let covered = closed_windows(state, &pipeline, from, to).await?;
                state.coverage.put(&pipeline, from, to, fingerprint, &covered);
                covered
            }
        };
        let starts: Vec<DateTime<Utc>> = covered.iter().map(|(start, _)| *start).collect();
        let uncovered = uncovered_ranges(size, from, to, &starts);
        Ok(Coverage { pipeline: Some(pipeline), source, size, covered, uncovered })
    }

    /// What served the range: for the answer's `served`.
    pub fn served(&self) -> Served {
        Served { windows_from_pipeline: self.covered.len(), pipeline: self.pipeline.clone() }
    }

    /// The covered windows' rows from the pipeline (`pipeline_columns`)
    /// and the rest from the source (`source_columns`, the same names), as
    /// one `UNION ALL`; `filters` (`AND …`) apply to both.
    pub fn union(&self, pipeline_columns: &str, source_columns: &str, filters: &str) -> String {
        self.union_filtered(pipeline_columns, source_columns, filters, filters)
    }

    /// [`Coverage::union`] with filters of each side's own: a pipeline that
    /// already selected its events needs none of the source's conditions.
    pub fn union_filtered(
        &self,
        pipeline_columns: &str,
        source_columns: &str,
        pipeline_filters: &str,
        source_filters: &str,
    ) -> String {
        let parts: Vec<String> =
            [self.pipeline_rows(pipeline_columns, pipeline_filters), self.source_rows(source_columns, source_filters)]
                .into_iter()
                .flatten()
                .collect();
        parts.join(" UNION ALL ")
    }

    /// `SELECT {columns} FROM` the pipeline's latest final rows of the
    /// covered windows, or None when none is covered. The versions are
    /// known, so a plain filter picks them (no window function).
    fn pipeline_rows(&self, columns: &str, filters: &str) -> Option<String> {
        let table = self.pipeline.as_deref()?;
        let ((first, _), (last, _)) = (self.covered.first()?, self.covered.last()?);
        let mut by_version: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for (start, version) in &self.covered {
            by_version.entry(*version).or_default().push(ts_sql(*start));
        }
        let versions: Vec<String> = by_version
            .iter()
            .map(|(version, starts)| {
                format!("(window_version = {version} AND window_start IN ({}))", starts.join(", "))
            })
            .collect();
        Some(format!(
            "SELECT {columns} FROM {table} WHERE {days} AND is_final AND ({versions}) {filters}",
            table = table,
            days = partitions("date", *first, *last + self.size),
            versions = versions.join(" OR "),
        ))
    }

    /// `SELECT {columns} FROM` the source over the uncovered ranges, or None
    /// when the pipeline covers everything.
    fn source_rows(&self, columns: &str, filters: &str) -> Option<String> {
        if self.uncovered.is_empty() {
            return None;
        }
        let (table, time) = (self.source.name(), self.source.time_column());
        let days: BTreeSet<String> = self
            .uncovered
            .iter()
            .flat_map(|(a, b)| {
                let last = (*b - Duration::microseconds(1)).date_naive();
                a.date_naive().iter_days().take_while(move |d| *d <= last)
            })
            .map(|d| format!("'{d}'"))
            .collect();
        let ranges: Vec<String> = self
            .uncovered
            .iter()
            .map(|(a, b)| format!("({time} >= {} AND {time} < {})", ts_sql(*a), ts_sql(*b)))
            .collect();
        Some(format!(
            "SELECT {columns} FROM {table} WHERE date IN ({}) AND ({}) {filters}",
            days.into_iter().collect::<Vec<_>>().join(", "),
            ranges.join(" OR "),
        ))
    }
}

/// Rows `{window_start, category, revenue, units}` over `[from, to)`, by
/// window then category, and how many windows came from the pipeline.
pub async fn revenue_rows(
    state: &Dashboard,
    window: RevenueWindow,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    filters: &str,
) -> Result<(Vec<RevenueRow>, Served), HttpError> {
    if !has(state, &["order_items"]).await {
        return Ok((Vec::new(), Served::default()));
    }
    let coverage = Coverage::of(state, Rollup::RevenueByCategory, window.size, from, to).await?;
    let bin = format!("date_bin(INTERVAL '{}', placed_at, TIMESTAMP '1970-01-01T00:00:00Z')", window.interval);
    let rows_of = coverage.union(
        "window_start, category, revenue, units",
        &format!("{bin} AS window_start, category, line_total AS revenue, quantity AS units"),
        filters,
    );
    let sql = format!(
        "SELECT window_start, category, sum(revenue) AS revenue, sum(units) AS units FROM ({rows_of}) \
         GROUP BY 1, 2 ORDER BY 1, 2"
    );
    Ok((crate::sql_rows::typed_rows(state, &sql).await?, coverage.served()))
}

/// The best sellers by revenue over `[from, to)` (`{product_id, units,
/// revenue}`, at most `limit`), and how many days came from the pipeline.
/// The caller names them from the catalog.
pub async fn top_product_rows(
    state: &Dashboard,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    filters: &str,
    limit: usize,
) -> Result<(String, Served), HttpError> {
    let coverage = Coverage::of(state, Rollup::RevenueByProduct, Duration::days(1), from, to).await?;
    let rows_of =
        coverage.union("product_id, units, revenue", "product_id, quantity AS units, line_total AS revenue", filters);
    let sql = format!(
        "SELECT product_id, sum(units) AS units, sum(revenue) AS revenue FROM ({rows_of}) \
         GROUP BY product_id ORDER BY revenue DESC, product_id LIMIT {limit}"
    );
    Ok((sql, coverage.served()))
}

/// The windows whole inside `[from, to)` the pipeline has emitted final and
/// whose events all made it into its rows, with their latest final version.
async fn closed_windows(
    state: &Dashboard,
    pipeline: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, i64)>, HttpError> {
    if !has(state, &[pipeline]).await {
        return Ok(Vec::new());
    }
    let in_range = format!("window_start >= {} AND window_end <= {}", ts_sql(from), ts_sql(to));
    let late = if has(state, &["late_events"]).await {
        format!(
            "AND window_start NOT IN (SELECT window_start FROM late_events WHERE pipeline = '{pipeline}' AND {} AND {in_range})",
            partitions("date", from, to),
        )
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT window_start, max(window_version) AS version FROM {pipeline} WHERE {} AND {in_range} AND is_final {late} \
         GROUP BY window_start",
        partitions("date", from, to),
    );
    let mut windows: Vec<(DateTime<Utc>, i64)> = rows(state, &sql)
        .await?
        .iter()
        .filter_map(|row| {
            let start = row.get("window_start").and_then(Value::as_str)?;
            let start = crate::params::time("window_start", Some(start)).ok().flatten()?;
            Some((start, row.get("version").and_then(Value::as_i64)?))
        })
        .collect();
    windows.sort_unstable();
    Ok(windows)
}

/// `[from, to)` less the covered windows, as merged ranges.
fn uncovered_ranges(
    size: Duration,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    covered: &[DateTime<Utc>],
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    let mut at = from;
    for start in covered.iter().copied().filter(|s| *s >= from && *s + size <= to) {
        if start > at {
            out.push((at, start));
        }
        at = at.max(start + size);
    }
    if at < to {
        out.push((at, to));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn windows_align_to_the_epoch() {
        let hour = WINDOWS[1].1;
        assert_eq!(hour.floor(t("2026-11-20T05:30:00Z")), t("2026-11-20T05:00:00Z"));
        assert_eq!(hour.ceil(t("2026-11-20T05:30:00Z")), t("2026-11-20T06:00:00Z"));
        assert_eq!(hour.ceil(t("2026-11-20T06:00:00Z")), t("2026-11-20T06:00:00Z"));
        let day = WINDOWS[2].1;
        assert_eq!(day.floor(t("2026-11-20T23:59:59Z")), t("2026-11-20T00:00:00Z"));
    }

    #[test]
    fn uncovered_ranges_are_the_range_less_whole_covered_windows() {
        let hour = Duration::hours(1);
        let (from, to) = (t("2026-11-20T00:30:00Z"), t("2026-11-20T06:00:00Z"));
        assert_eq!(uncovered_ranges(hour, from, to, &[]), [(from, to)]);
        let covered = [t("2026-11-20T01:00:00Z"), t("2026-11-20T02:00:00Z"), t("2026-11-20T04:00:00Z")];
        assert_eq!(
            uncovered_ranges(hour, from, to, &covered),
            [
                (from, t("2026-11-20T01:00:00Z")),
                (t("2026-11-20T03:00:00Z"), t("2026-11-20T04:00:00Z")),
                (t("2026-11-20T05:00:00Z"), to),
            ]
        );
        let all: Vec<_> = (0..6).map(|h| t("2026-11-20T00:00:00Z") + hour * h).collect();
        assert!(uncovered_ranges(hour, t("2026-11-20T00:00:00Z"), to, &all).is_empty());
    }

    #[test]
    fn the_shipped_pipelines_serve_every_figure_the_pages_draw() {
        let tables = RollupTables::builtin();
        for (rollup, size) in [
            (Rollup::RevenueByCategory, Duration::minutes(1)),
            (Rollup::RevenueByCategory, Duration::hours(1)),
            (Rollup::RevenueByCategory, Duration::days(1)),
            (Rollup::RevenueByProduct, Duration::days(1)),
            (Rollup::FraudRates, Duration::hours(1)),
            (Rollup::FraudRates, Duration::days(1)),
            (Rollup::FraudReasons, Duration::days(1)),
            (Rollup::FraudReviews, Duration::days(1)),
        ] {
            assert!(tables.table(rollup, size).is_some(), "{rollup} at {size}");
        }
        assert_eq!(tables.iter().count(), 8);
    }

    #[test]
    fn two_pipelines_serving_one_figure_are_refused() {
        let mut specs: Vec<Arc<PipelineSpec>> =
            analytics::builtin::builtin_pipelines().unwrap_or_default().into_iter().map(Arc::new).collect();
        let Some(twin) = specs.iter().find(|s| s.serves.is_some()).map(|s| {
            let mut twin = (**s).clone();
            twin.output = format!("{}_twin", s.output);
            Arc::new(twin)
        }) else {
            panic!("no shipped pipeline serves a figure")
        };
        specs.push(twin);
        let error = RollupTables::from_specs(&specs).err().unwrap_or_default();
        assert!(error.contains("both serve"), "{error}");
    }
}
