//! Exact `COUNT(DISTINCT s)` over strings, in one pass.
//!
//! DataFusion plans a query's lone distinct aggregate as a group-by on the
//! query's keys plus the counted column, then a second group-by on the keys
//! (`single_distinct_to_groupby`). When the column is an id (`order_id`,
//! `customer_id`) that inner group-by holds about one group per row, every
//! key column copied into a hash table built from empty per query: half of
//! a windowed pipeline's evaluation went there.
//!
//! [`install`] adds an analyzer rule that plans `COUNT(DISTINCT s)` over a
//! string column as [`DistinctStringCount`] instead: the query groups by its
//! keys alone, and each group counts its strings in a set of (group, string)
//! pairs. Each distinct string is interned once; a row repeating the row
//! before it (an order's items) is not even hashed again. The count stays
//! exact: strings are compared by their bytes, never by hash alone.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryBuilder, BooleanArray, Int64Array, ListBuilder, OffsetSizeTrait};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result, ScalarValue, internal_err};
use datafusion::logical_expr::expr::{AggregateFunction, Alias};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, Aggregate, AggregateUDF, AggregateUDFImpl, EmitTo, Expr, ExprSchemable, GroupsAccumulator,
    LogicalPlan, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::prelude::SessionContext;
use hashbrown::HashTable;

mod pairs;
use pairs::PairSet;

/// Plans every `COUNT(DISTINCT s)` over a string column in `ctx`'s queries
/// with [`DistinctStringCount`].
pub fn install(ctx: &SessionContext) {
    ctx.add_analyzer_rule(Arc::new(CountDistinctStrings));
}

#[derive(Debug)]
struct CountDistinctStrings;

impl AnalyzerRule for CountDistinctStrings {
    fn name(&self) -> &str {
        "count_distinct_strings"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        let udf = Arc::new(AggregateUDF::from(DistinctStringCount::new()));
        plan.transform_up_with_subqueries(|node| {
            let LogicalPlan::Aggregate(aggregate) = node else { return Ok(Transformed::no(node)) };
            let schema = aggregate.input.schema();
            let mut changed = false;
            let mut exprs = Vec::with_capacity(aggregate.aggr_expr.len());
            for expr in &aggregate.aggr_expr {
                match as_distinct_strings(expr, schema, &udf)? {
                    Some(rewritten) => {
                        changed = true;
                        exprs.push(rewritten);
                    }
                    None => exprs.push(expr.clone()),
                }
            }
            if !changed {
                return Ok(Transformed::no(LogicalPlan::Aggregate(aggregate)));
            }
            let rewritten = Aggregate::try_new(Arc::clone(&aggregate.input), aggregate.group_expr.clone(), exprs)?;
            Ok(Transformed::yes(LogicalPlan::Aggregate(rewritten)))
        })
        .map(|t| t.data)
    }
}

/// `expr` as a call of `udf` under the same output name, if it is a plain
/// `COUNT(DISTINCT s)` (a `FILTER` clause is kept) over a string.
fn as_distinct_strings(expr: &Expr, schema: &DFSchema, udf: &Arc<AggregateUDF>) -> Result<Option<Expr>> {
    let (call, alias) = match expr {
        Expr::Alias(alias) => (alias.expr.as_ref(), Some(alias)),
        other => (other, None),
    };
    let Expr::AggregateFunction(function) = call else { return Ok(None) };
    let params = &function.params;
    if function.func.name() != "count"
        || !params.distinct
        || params.args.len() != 1
        || !params.order_by.is_empty()
        || params.null_treatment.is_some()
    {
        return Ok(None);
    }
    if !matches!(params.args[0].get_type(schema)?, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
        return Ok(None);
    }
    let counted = Expr::AggregateFunction(AggregateFunction::new_udf(
        Arc::clone(udf),
        params.args.clone(),
        false,
        params.filter.clone(),
        Vec::new(),
        None,
    ));
    // The plan above reads the aggregate's output by its name.
    Ok(Some(match alias {
        Some(alias) => Expr::Alias(Alias { expr: Box::new(counted), ..alias.clone() }),
        None => counted.alias(expr.schema_name().to_string()),
    }))
}

/// The aggregate `COUNT(DISTINCT s)` becomes: the number of distinct
/// non-null strings per group. Its partial state is the group's distinct
/// strings, as a list of binaries.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DistinctStringCount {
    signature: Signature,
}

impl DistinctStringCount {
    pub fn new() -> DistinctStringCount {
        let strings = vec![DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View];
        DistinctStringCount { signature: Signature::uniform(1, strings, Volatility::Immutable) }
    }
}

impl Default for DistinctStringCount {
    fn default() -> Self {
        Self::new()
    }
}

impl AggregateUDFImpl for DistinctStringCount {
    fn name(&self) -> &str {
        "count_distinct_strings"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(0)))
    }

    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new_list("distinct_strings", Field::new_list_field(DataType::Binary, true), true))])
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(OneGroup(DistinctStrings::default())))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(DistinctStrings::default()))
    }
}

/// Every group's distinct strings: each string interned once (its bytes in
/// `bytes`, its id its place in `ends`), each group's strings a set of
/// (group, id) pairs.
#[derive(Debug, Default)]
pub struct DistinctStrings {
    counts: Vec<i64>,
    bytes: Vec<u8>,
    ends: Vec<usize>,
    /// (hash, id) of every interned string.
    interned: HashTable<(u64, u32)>,
    pairs: PairSet,
    hasher: hashbrown::DefaultHashBuilder,
}

impl DistinctStrings {
    fn string(&self, id: u32) -> &[u8] {
        let id = id as usize;
        let start = if id == 0 { 0 } else { self.ends[id - 1] };
        &self.bytes[start..self.ends[id]]
    }

    fn intern(&mut self, value: &[u8]) -> Result<u32> {
        use std::hash::BuildHasher;
        let hash = self.hasher.hash_one(value);
        if let Some(&(_, id)) = self.interned.find(hash, |&(h, id)| h == hash && same_bytes(self.string(id), value)) {
            return Ok(id);
        }
        let Ok(id) = u32::try_from(self.ends.len()) else {
            return internal_err!("count_distinct_strings: more than 2^32 distinct strings");
        };
        self.bytes.extend_from_slice(value);
        self.ends.push(self.bytes.len());
        self.interned.insert_unique(hash, (hash, id), |&(h, _)| h);
        Ok(id)
    }

    /// Room for `total_num_groups` counts. Groups are numbered in u32 in
    /// the pair set (`u32::MAX` marks an empty slot), so there must be
    /// fewer: checked here once per batch, not per row in [`Self::add`].
    fn resize_counts(&mut self, total_num_groups: usize) -> Result<()> {
        if u32::try_from(total_num_groups).is_err() {
            return internal_err!("count_distinct_strings: more than 2^32 - 1 groups");
        }
        self.counts.resize(total_num_groups, 0);
        Ok(())
    }

    /// Counts `id` in `group` (below the groups [`Self::resize_counts`]
    /// made room for) unless the group has it already.
    fn add(&mut self, group: usize, id: u32) {
        if self.pairs.insert(group as u32, id) {
            self.counts[group] += 1;
        }
    }

    /// Adds each kept row's string to its group. A row equal to the row
    /// before it reuses that row's id without hashing.
    fn add_strings<'a>(
        &mut self,
        rows: impl Iterator<Item = Option<&'a [u8]>>,
        row_bytes: usize,
        groups: &[usize],
        keep: Option<&BooleanArray>,
    ) -> Result<()> {
        // Room for every row to be new: one allocation each, not a copy per
        // doubling (the state starts empty in every query). Room never
        // written is never touched, so costs no memory.
        self.interned.reserve(groups.len(), |&(hash, _)| hash);
        self.bytes.reserve(row_bytes);
        self.ends.reserve(groups.len());
        self.pairs.reserve(groups.len());
        let mut previous: Option<(&[u8], u32)> = None;
        for (row, (value, &group)) in rows.zip(groups).enumerate() {
            let Some(value) = value else { continue };
            if keep.is_some_and(|k| !k.is_valid(row) || !k.value(row)) {
                continue;
            }
            let id = match previous {
                Some((bytes, id)) if same_bytes(bytes, value) => id,
                _ => self.intern(value)?,
            };
            previous = Some((value, id));
            self.add(group, id);
        }
        Ok(())
    }

    /// Takes the emitted groups' counts out, and their pairs into `taken`
    /// when asked (a state needs them, a final count does not); later
    /// groups move down to start at 0. The pairs' strings stay interned
    /// until [`DistinctStrings::forget_if_empty`].
    fn take(&mut self, emit_to: EmitTo, taken: Option<&mut Vec<(u32, u32)>>) -> Vec<i64> {
        let counts = emit_to.take_needed(&mut self.counts);
        if self.counts.is_empty() {
            self.pairs.take_all(taken);
        } else {
            // Fewer than u32::MAX groups were emitted (`resize_counts`).
            self.pairs.take_first(counts.len() as u32, taken);
        }
        counts
    }

    /// With no group left, no string is needed: start over small.
    fn forget_if_empty(&mut self) {
        if self.counts.is_empty() {
            *self = DistinctStrings { hasher: self.hasher.clone(), ..DistinctStrings::default() };
        }
    }

    /// One list of distinct strings per group `0..groups`.
    fn lists(&self, groups: usize, mut pairs: Vec<(u32, u32)>) -> ArrayRef {
        pairs.sort_unstable();
        let mut lists = ListBuilder::new(BinaryBuilder::new());
        let mut pairs = pairs.into_iter().peekable();
        for group in 0..groups {
            while let Some((_, id)) = pairs.next_if(|(g, _)| *g as usize == group) {
                lists.values().append_value(self.string(id));
            }
            lists.append(true);
        }
        Arc::new(lists.finish())
    }
}

/// `a == b`, eight bytes at a time and inlined: slice equality calls
/// `memcmp`, which for a 36-byte id costs more than the comparison, and
/// this runs once or twice per row.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let word = |chunk: &[u8]| <[u8; 8]>::try_from(chunk).map_or(0, u64::from_ne_bytes);
    let (mut a_words, mut b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    (&mut a_words).zip(&mut b_words).all(|(x, y)| word(x) == word(y))
        && a_words.remainder().iter().zip(b_words.remainder()).all(|(x, y)| x == y)
}

/// The bytes of a plain string column's rows (of its slice, not of the
/// whole buffer); 0 for views, whose short strings have no bytes apart.
fn string_bytes(array: &ArrayRef) -> usize {
    fn plain<O: OffsetSizeTrait>(array: &ArrayRef) -> usize {
        let offsets = array.as_string::<O>().value_offsets();
        match (offsets.first(), offsets.last()) {
            (Some(first), Some(last)) => (*last - *first).as_usize(),
            _ => 0,
        }
    }
    match array.data_type() {
        DataType::Utf8 => plain::<i32>(array),
        DataType::LargeUtf8 => plain::<i64>(array),
        _ => 0,
    }
}

/// The rows of a string column as bytes (`None` for a null).
fn string_rows(array: &ArrayRef) -> Result<Box<dyn Iterator<Item = Option<&[u8]>> + '_>> {
    fn plain<O: OffsetSizeTrait>(array: &ArrayRef) -> Box<dyn Iterator<Item = Option<&[u8]>> + '_> {
        Box::new(array.as_string::<O>().iter().map(|s| s.map(str::as_bytes)))
    }
    Ok(match array.data_type() {
        DataType::Utf8View => Box::new(array.as_string_view().iter().map(|s| s.map(str::as_bytes))),
        DataType::Utf8 => plain::<i32>(array),
        DataType::LargeUtf8 => plain::<i64>(array),
        other => return internal_err!("count_distinct_strings over {other}"),
    })
}

impl GroupsAccumulator for DistinctStrings {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize_counts(total_num_groups)?;
        let Some(array) = values.first() else { return internal_err!("count_distinct_strings takes one argument") };
        self.add_strings(string_rows(array)?, string_bytes(array), group_indices, opt_filter)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let counts = self.take(emit_to, None);
        self.forget_if_empty();
        Ok(Arc::new(Int64Array::from(counts)))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let mut pairs = Vec::new();
        let counts = self.take(emit_to, Some(&mut pairs));
        let lists = self.lists(counts.len(), pairs);
        self.forget_if_empty();
        Ok(vec![lists])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.resize_counts(total_num_groups)?;
        let Some(lists) = values.first().and_then(|v| v.as_list_opt::<i32>()) else {
            return internal_err!("count_distinct_strings: a state that is not a list");
        };
        for (row, &group) in group_indices.iter().enumerate() {
            if lists.is_null(row) {
                continue;
            }
            let list = lists.value(row);
            let Some(strings) = list.as_binary_opt::<i32>() else {
                return internal_err!("count_distinct_strings: a state that is not a list of binaries");
            };
            for value in strings.iter().flatten() {
                let id = self.intern(value)?;
                self.add(group, id);
            }
        }
        Ok(())
    }

    /// Each row as its own state: a list of its one string (none when it is
    /// null or filtered out).
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let Some(array) = values.first() else { return internal_err!("count_distinct_strings takes one argument") };
        let rows = string_rows(array)?;
        let mut lists = ListBuilder::new(BinaryBuilder::new());
        for (row, value) in rows.enumerate() {
            let kept = opt_filter.is_none_or(|k| k.is_valid(row) && k.value(row));
            if let Some(value) = value.filter(|_| kept) {
                lists.values().append_value(value);
            }
            lists.append(true);
        }
        Ok(vec![Arc::new(lists.finish())])
    }

    fn size(&self) -> usize {
        self.counts.capacity() * 8
            + self.bytes.capacity()
            + self.ends.capacity() * 8
            + self.interned.capacity() * 16
            + self.pairs.size()
    }
}

/// The same count without a GROUP BY: one group.
#[derive(Debug)]
struct OneGroup(DistinctStrings);

impl Accumulator for OneGroup {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let rows = values.first().map_or(0, |v| v.len());
        self.0.update_batch(values, &vec![0; rows], None, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.0.counts.resize(1, 0);
        Ok(ScalarValue::Int64(Some(self.0.counts[0])))
    }

    fn size(&self) -> usize {
        self.0.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let pairs = self.0.pairs.iter().collect();
        Ok(vec![ScalarValue::try_from_array(&self.0.lists(1, pairs), 0)?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let rows = states.first().map_or(0, |v| v.len());
        self.0.merge_batch(states, &vec![0; rows], 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{RecordBatch, StringArray};
    use arrow::datatypes::Schema;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionConfig;
    use proptest::prelude::*;

    const QUERIES: [&str; 3] = [
        "SELECT g, COUNT(DISTINCT s) AS n, COUNT(DISTINCT s) FILTER (WHERE s > 'b') AS f, COUNT(*) AS rows \
         FROM t GROUP BY g ORDER BY g",
        "SELECT COUNT(DISTINCT s) FROM t",
        "SELECT g, COUNT(DISTINCT arrow_cast(s, 'Utf8View')) FROM t WHERE g <> 'x' GROUP BY g ORDER BY g",
    ];

    /// Rows of (group, string), in batches, in partitions.
    type Rows = Vec<(String, Option<String>)>;

    fn table(partitions: Vec<Vec<Rows>>) -> Arc<MemTable> {
        let schema =
            Arc::new(Schema::new(vec![Field::new("g", DataType::Utf8, false), Field::new("s", DataType::Utf8, true)]));
        let partitions = partitions
            .into_iter()
            .map(|batches| {
                batches
                    .into_iter()
                    .map(|rows| {
                        let (g, s): (Vec<String>, Vec<Option<String>>) = rows.into_iter().unzip();
                        let columns: Vec<ArrayRef> =
                            vec![Arc::new(StringArray::from(g)), Arc::new(StringArray::from(s))];
                        RecordBatch::try_new(Arc::clone(&schema), columns).expect("batch")
                    })
                    .collect()
            })
            .collect();
        Arc::new(MemTable::try_new(schema, partitions).expect("table"))
    }

    async fn run(sql: &str, table: Arc<MemTable>, partitions: usize, installed: bool) -> Vec<RecordBatch> {
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(partitions));
        if installed {
            install(&ctx);
        }
        ctx.register_table("t", table).expect("register");
        ctx.sql(sql).await.expect("plan").collect().await.expect("run")
    }

    fn rows() -> impl Strategy<Value = Rows> {
        // More groups than a string keeps inline, so some spill.
        let group = prop::sample::select(vec!["a", "b", "c", "d", "e", "f", "x"]).prop_map(String::from);
        let value = prop::option::weighted(0.9, "[a-d]{0,2}|order-[0-9]{2}-with-a-long-id");
        prop::collection::vec((group, value), 0..60)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The same rows as DataFusion's own plan, on one and two
        /// partitions (partial states merged), nulls and filters included.
        #[test]
        fn counts_as_datafusion_does(partitions in prop::collection::vec(prop::collection::vec(rows(), 0..4), 1..3)) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            for sql in QUERIES {
                for target in [1, 2] {
                    let ours = runtime.block_on(run(sql, table(partitions.clone()), target, true));
                    let theirs = runtime.block_on(run(sql, table(partitions.clone()), target, false));
                    let show = |b: &[RecordBatch]| arrow::util::pretty::pretty_format_batches(b).expect("format").to_string();
                    prop_assert_eq!(show(&ours), show(&theirs), "{}", sql);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn same_bytes_is_equality(a in prop::collection::vec(0u8..3, 0..40), b in prop::collection::vec(0u8..3, 0..40)) {
            prop_assert_eq!(same_bytes(&a, &b), a == b);
            prop_assert!(same_bytes(&a, &a));
        }
    }

    #[tokio::test]
    async fn plans_the_distinct_count_over_strings_only() {
        let ctx = SessionContext::new();
        install(&ctx);
        ctx.register_table("t", table(vec![vec![vec![("a".into(), Some("1".into()))]]])).expect("register");
        let plan = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                format!("{}", ctx.sql(sql).await.expect("plan").into_optimized_plan().expect("plan").display_indent())
            }
        };
        let strings = plan("SELECT g, COUNT(DISTINCT s) AS n FROM t GROUP BY g").await;
        assert!(strings.contains("count_distinct_strings(t.s)"), "{strings}");
        let lengths = plan("SELECT g, COUNT(DISTINCT length(s)) AS n FROM t GROUP BY g").await;
        assert!(!lengths.contains("count_distinct_strings"), "{lengths}");
    }

    #[test]
    fn emitting_the_first_groups_keeps_the_others_counts() {
        let mut sets = DistinctStrings::default();
        let strings: ArrayRef = Arc::new(StringArray::from(vec!["p", "q", "p", "q", "r", "q"]));
        sets.update_batch(&[Arc::clone(&strings)], &[0, 0, 0, 1, 1, 2], None, 3).expect("update");
        let first = sets.evaluate(EmitTo::First(1)).expect("evaluate");
        assert_eq!(first.as_primitive::<arrow::datatypes::Int64Type>().values().to_vec(), vec![2]);
        // Groups 1 and 2 are now 0 and 1.
        sets.update_batch(&[strings], &[0, 0, 1, 1, 1, 1], None, 2).expect("update");
        let state = sets.state(EmitTo::First(1)).expect("state");
        let mut merged = DistinctStrings::default();
        merged.merge_batch(&state, &[0], 1).expect("merge");
        let rest = sets.evaluate(EmitTo::All).expect("evaluate");
        assert_eq!(rest.as_primitive::<arrow::datatypes::Int64Type>().values().to_vec(), vec![3]);
        let merged = merged.evaluate(EmitTo::All).expect("evaluate");
        assert_eq!(merged.as_primitive::<arrow::datatypes::Int64Type>().values().to_vec(), vec![3]);
        assert_eq!(sets.size(), DistinctStrings::default().size(), "nothing kept once every group is out");
    }
}
