//! A `date=YYYY-MM-DD` partitioned table that lists only the days a query
//! can read.
//!
//! DataFusion's `ListingTable` narrows its listing to one directory only
//! for `date = 'D'`; for a range (`date BETWEEN a AND b`, `date >= a`,
//! `date IN (...)`) it lists every file of the table and filters the paths
//! afterwards. With a year of days that walk is ~10 ms per table a query
//! names (docs/benchmarks.md, ninth round), more than the rest of most
//! dashboard queries. Here the `date` filters are read first: when they
//! bound the days to at most [`MAX_LISTED_DAYS`], each day is planned as
//! `date = 'D'` (one directory listed) and the days' files are read as one
//! scan (not one per day), the small ones from the session's
//! [`SmallFiles`], decoded in memory. Otherwise the table is scanned as
//! before.
//!
//! The days are enumerated as calendar dates, so this relies on what our
//! writers guarantee: every `date` partition is a canonical `YYYY-MM-DD`
//! (string order is then date order). A filter this module does not
//! understand is not used to narrow the days; every filter is still
//! applied by the listing table itself, so the rows are the same either way.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{Days, NaiveDate};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Constraints, Result, ScalarValue, Statistics, project_schema};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::{ListingTable, PartitionedFile};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown, col, lit};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;

use crate::query::small_files::SmallFiles;

/// Beyond this many days one walk of the table is no dearer than a listing
/// (and a plan) per day.
pub const MAX_LISTED_DAYS: u64 = 120;

/// A listing table partitioned by `date` alone.
#[derive(Debug)]
pub struct DatedTable {
    inner: Arc<ListingTable>,
}

impl DatedTable {
    pub fn new(inner: ListingTable) -> Self {
        DatedTable { inner: Arc::new(inner) }
    }
}

/// What a query's filters say about the `date` column.
#[derive(Clone, Debug, Default, PartialEq)]
struct DayBounds {
    first: Option<NaiveDate>,
    last: Option<NaiveDate>,
    /// An explicit set (from `=` or `IN`), when there is one.
    only: Option<BTreeSet<NaiveDate>>,
    /// A `date = 'D'` filter: the listing table already lists one day.
    has_equality: bool,
}

impl DayBounds {
    fn at_least(&mut self, day: NaiveDate) {
        self.first = Some(self.first.map_or(day, |d| d.max(day)));
    }

    fn at_most(&mut self, day: NaiveDate) {
        self.last = Some(self.last.map_or(day, |d| d.min(day)));
    }

    fn within(&mut self, days: BTreeSet<NaiveDate>) {
        self.only = Some(match self.only.take() {
            Some(known) => known.intersection(&days).copied().collect(),
            None => days,
        });
    }

    /// Narrows by one filter; a filter of another shape narrows nothing.
    fn add(&mut self, filter: &Expr) {
        match filter {
            Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) => {
                self.add(left);
                self.add(right);
            }
            // DataFusion spells a short `IN` list as `=`s joined by OR.
            Expr::BinaryExpr(BinaryExpr { op: Operator::Or, .. }) | Expr::InList(_) => {
                if let Some(days) = day_set(filter) {
                    self.within(days);
                }
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (op, day) = match (is_date(left), day_literal(right), is_date(right), day_literal(left)) {
                    (true, Some(day), _, _) => (*op, day),
                    (_, _, true, Some(day)) => match op.swap() {
                        Some(op) => (op, day),
                        None => return,
                    },
                    _ => return,
                };
                match op {
                    Operator::Eq => {
                        self.has_equality = true;
                        self.within(BTreeSet::from([day]));
                    }
                    Operator::GtEq => self.at_least(day),
                    Operator::Gt => self.at_least(day + Days::new(1)),
                    Operator::LtEq => self.at_most(day),
                    Operator::Lt => match day.pred_opt() {
                        Some(day) => self.at_most(day),
                        None => self.within(BTreeSet::new()),
                    },
                    _ => {}
                }
            }
            Expr::Between(Between { expr, negated: false, low, high }) if is_date(expr) => {
                if let Some(low) = day_literal(low) {
                    self.at_least(low);
                }
                if let Some(high) = day_literal(high) {
                    self.at_most(high);
                }
            }
            _ => {}
        }
    }

    /// The days to list one by one, or None to walk the whole table.
    fn days(&self) -> Option<BTreeSet<NaiveDate>> {
        let in_bounds = |d: &NaiveDate| self.first.is_none_or(|f| *d >= f) && self.last.is_none_or(|l| *d <= l);
        if let Some(only) = &self.only {
            return (only.len() as u64 <= MAX_LISTED_DAYS).then(|| only.iter().copied().filter(in_bounds).collect());
        }
        let (first, last) = (self.first?, self.last?);
        if last < first {
            return Some(BTreeSet::new());
        }
        let span = u64::try_from((last - first).num_days()).ok()?;
        if span >= MAX_LISTED_DAYS {
            return None;
        }
        Some(first.iter_days().take_while(|d| *d <= last).collect())
    }
}

/// The days an `=`, an `IN` list, or an OR of those allows; None for any
/// other shape.
fn day_set(expr: &Expr) -> Option<BTreeSet<NaiveDate>> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Or, right }) => {
            let mut days = day_set(left)?;
            days.extend(day_set(right)?);
            Some(days)
        }
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) => match (is_date(left), is_date(right)) {
            (true, _) => day_literal(right).map(|d| BTreeSet::from([d])),
            (_, true) => day_literal(left).map(|d| BTreeSet::from([d])),
            _ => None,
        },
        Expr::InList(list) if !list.negated && is_date(&list.expr) => list.list.iter().map(day_literal).collect(),
        _ => None,
    }
}

fn is_date(expr: &Expr) -> bool {
    matches!(expr, Expr::Column(c) if c.name == "date")
}

/// A canonical `YYYY-MM-DD` string literal.
fn day_literal(expr: &Expr) -> Option<NaiveDate> {
    let Expr::Literal(
        ScalarValue::Utf8(Some(text)) | ScalarValue::Utf8View(Some(text)) | ScalarValue::LargeUtf8(Some(text)),
        _,
    ) = expr
    else {
        return None;
    };
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    // Only the canonical spelling (a date displays as `YYYY-MM-DD`): string
    // order must be date order.
    (day.to_string() == *text).then_some(day)
}

#[async_trait]
impl TableProvider for DatedTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.inner.constraints()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn statistics(&self) -> Option<Statistics> {
        self.inner.statistics()
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut bounds = DayBounds::default();
        for filter in filters {
            bounds.add(filter);
        }
        let plans = match bounds.days() {
            Some(days) if !bounds.has_equality => {
                let scans = days.iter().map(|day| {
                    let mut filters = filters.to_vec();
                    filters.push(col("date").eq(lit(day.to_string())));
                    async move { self.inner.scan(state, projection, &filters, limit).await }
                });
                futures::future::try_join_all(scans).await?
            }
            // One day named, or no usable bound: the listing table's own way.
            _ => vec![self.inner.scan(state, projection, filters, limit).await?],
        };
        let plans: Vec<Arc<dyn ExecutionPlan>> = plans.into_iter().filter(|plan| !plan.is::<EmptyExec>()).collect();
        if plans.is_empty() {
            return Ok(Arc::new(EmptyExec::new(project_schema(&self.schema(), projection)?)));
        }
        let Some(configs) = file_scans(&plans) else { return UnionExec::try_new(plans) };
        // The session's decoded small files (see `query::session`), if any.
        let small_files = state.config().get_extension::<SmallFiles>();
        let files: Vec<PartitionedFile> =
            configs.iter().flat_map(|c| c.file_groups.iter().flat_map(|g| g.files().iter().cloned())).collect();
        let (small, large) = match small_files {
            Some(_) => SmallFiles::pick(files),
            None => (Vec::new(), files),
        };
        if small.is_empty() && plans.len() == 1 {
            return Ok(plans[0].clone());
        }
        let partitions = state.config().target_partitions().max(1);
        let mut parts: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !small.is_empty()
            && let (Some(cache), Some(first)) = (&small_files, configs.first())
        {
            let store = state.runtime_env().object_store(&first.object_store_url)?;
            let decoded = cache.batches(&store, &small, &self.schema()).await?;
            // A file's batches stay together; files spread over the partitions.
            let mut groups = vec![Vec::new(); partitions.min(decoded.len()).max(1)];
            let count = groups.len();
            for (at, batches) in decoded.iter().enumerate() {
                groups[at % count].extend(batches.iter().cloned());
            }
            let source = MemorySourceConfig::try_new(&groups, self.schema(), projection.cloned())?.with_limit(limit);
            parts.push(DataSourceExec::from_data_source(source));
        }
        if !large.is_empty() {
            parts.push(one_scan(&configs, large, small.is_empty(), &self.schema(), partitions));
        }
        UnionExec::try_new(parts)
    }
}

/// The plans' file scan configurations, or None when one is not a plain
/// file scan or the scans differ in what one file scan cannot express.
fn file_scans(plans: &[Arc<dyn ExecutionPlan>]) -> Option<Vec<&FileScanConfig>> {
    let configs: Vec<&FileScanConfig> = plans
        .iter()
        .map(|plan| plan.downcast_ref::<DataSourceExec>()?.data_source().downcast_ref::<FileScanConfig>())
        .collect::<Option<_>>()?;
    let first = configs.first()?;
    let alike = configs.iter().all(|c| c.output_partitioning.is_none() && c.limit == first.limit);
    alike.then_some(configs)
}

/// The days' file scans as one scan over `files`, split into `partitions`
/// groups the way the listing table splits its files (by path, so by day).
/// A union of one scan per day would run every operator above it once per
/// day: a fortnight's files aggregated in 14 partial aggregations instead
/// of 2 (docs/benchmarks.md, ninth round). The scans' statistics hold when
/// `files` are all of their files (`all_files`).
fn one_scan(
    configs: &[&FileScanConfig],
    files: Vec<PartitionedFile>,
    all_files: bool,
    schema: &SchemaRef,
    partitions: usize,
) -> Arc<dyn ExecutionPlan> {
    let first = configs[0];
    // An ordering all days' files share stays declared; DataFusion keeps
    // it only for groups whose files are in order by their statistics.
    let ordering = if configs.iter().all(|c| c.output_ordering == first.output_ordering) {
        first.output_ordering.clone()
    } else {
        vec![]
    };
    let statistics = if all_files {
        let each: Vec<Statistics> = configs.iter().map(|c| c.statistics()).collect();
        Statistics::try_merge_iter(&each, schema).unwrap_or_else(|_| Statistics::new_unknown(schema))
    } else {
        Statistics::new_unknown(schema)
    };
    let config = FileScanConfigBuilder::from(first.clone())
        .with_file_groups(FileGroup::new(files).split_files(partitions))
        .with_statistics(statistics)
        .with_output_ordering(ordering)
        .build();
    DataSourceExec::from_data_source(config)
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::col;

    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn days_of(filters: &[Expr]) -> (Option<BTreeSet<NaiveDate>>, bool) {
        let mut bounds = DayBounds::default();
        for f in filters {
            bounds.add(f);
        }
        (bounds.days(), bounds.has_equality)
    }

    fn set(days: &[&str]) -> Option<BTreeSet<NaiveDate>> {
        Some(days.iter().map(|s| d(s)).collect())
    }

    #[test]
    fn ranges_and_lists_bound_the_days() {
        let between = col("date").between(lit("2026-02-27"), lit("2026-03-01"));
        assert_eq!(days_of(&[between]).0, set(&["2026-02-27", "2026-02-28", "2026-03-01"]));
        let open = [col("date").gt(lit("2026-01-01")), col("date").lt(lit("2026-01-04"))];
        assert_eq!(days_of(&open).0, set(&["2026-01-02", "2026-01-03"]));
        // The literal on the left, and both bounds in one AND.
        let flipped = lit("2026-01-03").gt_eq(col("date")).and(col("date").gt_eq(lit("2026-01-02")));
        assert_eq!(days_of(&[flipped]).0, set(&["2026-01-02", "2026-01-03"]));
        let listed = col("date").in_list(vec![lit("2026-01-05"), lit("2026-01-01")], false);
        let bounded = col("date").lt_eq(lit("2026-01-03"));
        assert_eq!(days_of(&[listed, bounded]).0, set(&["2026-01-01"]));
        assert_eq!(days_of(&[col("date").gt(lit("2026-01-02")), col("date").lt(lit("2026-01-01"))]).0, set(&[]));
    }

    #[test]
    fn what_it_cannot_read_narrows_nothing() {
        // Open-ended, too long, non-canonical, negated, or another column.
        assert_eq!(days_of(&[col("date").gt_eq(lit("2026-01-01"))]).0, None);
        let long = col("date").between(lit("2025-01-01"), lit("2026-01-01"));
        assert_eq!(days_of(&[long]).0, None);
        let odd = [col("date").gt_eq(lit("2026-1-1")), col("date").lt_eq(lit("2026-01-02"))];
        assert_eq!(days_of(&odd).0, None);
        let negated = col("date").in_list(vec![lit("2026-01-01")], true);
        assert_eq!(days_of(&[negated]).0, None);
        let other = [col("day").gt_eq(lit("2026-01-01")), col("day").lt_eq(lit("2026-01-02"))];
        assert_eq!(days_of(&other).0, None);
        let mixed = col("date").eq(lit("2026-01-01")).or(col("day").eq(lit("2026-01-03")));
        assert_eq!(days_of(&[mixed]).0, None);
    }

    #[test]
    fn an_or_of_days_is_a_list_not_a_named_day() {
        let either = col("date").eq(lit("2026-01-01")).or(col("date").eq(lit("2026-01-03")));
        assert_eq!(days_of(&[either]), (set(&["2026-01-01", "2026-01-03"]), false));
    }

    /// The test files' columns: `id`, and `label` (`{label}-{id}`).
    fn file_schema() -> SchemaRef {
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("label", DataType::Utf8, false),
        ]))
    }

    /// Writes `date=D/part-N.parquet`, one row per id.
    fn write_day(root: &std::path::Path, day: &str, part: usize, ids: std::ops::Range<i64>, label: &str) {
        use datafusion::arrow::array::{Int64Array, StringArray};
        let dir = root.join(format!("date={day}"));
        std::fs::create_dir_all(&dir).unwrap();
        let schema = file_schema();
        let labels: Vec<String> = ids.clone().map(|i| format!("{label}-{i}")).collect();
        let batch = datafusion::arrow::array::RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(ids)), Arc::new(StringArray::from(labels))],
        )
        .unwrap();
        let file = std::fs::File::create(dir.join(format!("part-{part}.parquet"))).unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    fn listing(root: &std::path::Path) -> ListingTable {
        use datafusion::arrow::datatypes::DataType;
        use datafusion::datasource::file_format::parquet::ParquetFormat;
        use datafusion::datasource::listing::{ListingOptions, ListingTableConfig, ListingTableUrl};
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![("date".to_string(), DataType::Utf8)]);
        let url = ListingTableUrl::parse(format!("{}/", root.display())).unwrap();
        let config = ListingTableConfig::new(url).with_listing_options(options).with_schema(file_schema());
        ListingTable::try_new(config).unwrap()
    }

    async fn rows(ctx: &datafusion::prelude::SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        datafusion::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string()
    }

    #[tokio::test]
    async fn reads_the_same_rows_as_the_listing_table_with_and_without_small_files() {
        let dir = tempfile::tempdir().unwrap();
        for (n, day) in ["2026-02-27", "2026-02-28", "2026-03-01", "2026-03-02"].iter().enumerate() {
            let base = n as i64 * 100;
            write_day(dir.path(), day, 0, base..base + 10, "a");
            write_day(dir.path(), day, 1, base + 50..base + 53, "b");
        }
        let queries = [
            "SELECT date, count(*) AS n, sum(id) AS s FROM t WHERE date BETWEEN '2026-02-28' AND '2026-03-01' GROUP BY date ORDER BY date",
            "SELECT id, label, date FROM t WHERE date IN ('2026-02-27', '2026-03-02') AND id % 3 = 0 ORDER BY id",
            "SELECT id FROM t WHERE (date = '2026-02-27' OR date = '2026-03-01') AND label LIKE 'b%' ORDER BY id",
            "SELECT count(*) AS n FROM t WHERE date > '2026-02-27' AND date < '2026-03-02'",
            "SELECT count(*) AS n FROM t WHERE date >= '2026-03-01'",
            "SELECT max(id) AS m FROM t WHERE date = '2026-03-01'",
            "SELECT label FROM t WHERE date BETWEEN '2026-02-01' AND '2026-03-31' ORDER BY id DESC LIMIT 3",
            "SELECT count(*) AS n FROM t WHERE date BETWEEN '2026-03-05' AND '2026-03-09'",
            "SELECT date FROM t WHERE date >= '2026-3-1' AND date <= '2026-03-02' GROUP BY date ORDER BY date",
        ];
        // As `query::session`: listings are not cached, so a replaced file is seen.
        let context = |config: datafusion::prelude::SessionConfig, table: Arc<dyn TableProvider>| {
            let caches = datafusion::execution::cache::cache_manager::CacheManagerConfig::default()
                .with_list_files_cache_limit(0);
            let runtime =
                datafusion::execution::runtime_env::RuntimeEnvBuilder::new().with_cache_manager(caches).build_arc();
            let ctx = datafusion::prelude::SessionContext::new_with_config_rt(config, runtime.unwrap());
            ctx.register_table("t", table).unwrap();
            ctx
        };
        let plain = context(Default::default(), Arc::new(listing(dir.path())));
        let by_day = context(Default::default(), Arc::new(DatedTable::new(listing(dir.path()))));
        let config = datafusion::prelude::SessionConfig::new().with_extension(Arc::new(SmallFiles::new(1 << 20)));
        let cached = context(config, Arc::new(DatedTable::new(listing(dir.path()))));
        for sql in queries {
            let expected = rows(&plain, sql).await;
            assert_eq!(rows(&by_day, sql).await, expected, "{sql}");
            // Twice: the first read decodes the files, the second finds them kept.
            assert_eq!(rows(&cached, sql).await, expected, "{sql}");
            assert_eq!(rows(&cached, sql).await, expected, "{sql}");
        }
        // A file replaced whole is read again, not served from memory.
        let sql = "SELECT sum(id) AS s, min(label) AS l FROM t WHERE date BETWEEN '2026-02-28' AND '2026-03-01'";
        let before = rows(&cached, sql).await;
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_day(dir.path(), "2026-02-28", 1, 1000..1004, "c");
        let after = rows(&cached, sql).await;
        assert_ne!(after, before);
        assert_eq!(after, rows(&plain, sql).await);
    }

    #[test]
    fn one_named_day_is_left_to_the_listing_table() {
        let (days, equality) = days_of(&[col("date").eq(lit("2026-01-01"))]);
        assert_eq!(days, set(&["2026-01-01"]));
        assert!(equality);
    }
}
