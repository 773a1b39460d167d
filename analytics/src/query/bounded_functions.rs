//! Scalar functions whose result can dwarf their input (`repeat('a',
//! 1000000000)`, `lpad`, `replace` of the empty string, `range` over a
//! century in seconds, ...) are accounted in the session's memory pool:
//! before one runs, its result's size is bounded from its arguments and
//! reserved from the pool, so a result larger than the pool allows is a
//! "resources exhausted" error (the dashboard's 503) instead of gigabytes
//! the pool never saw. DataFusion's pool tracks operators' buffers, not
//! the arrays a scalar function returns, which is why this exists.

use std::any::Any;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Int64Type, IntervalMonthDayNanoType, TimeUnit, TimestampSecondType};
use datafusion::common::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;

/// Bytes a call's result may take at most, from its evaluated arguments.
type Estimate = fn(&[ColumnarValue], usize) -> u128;

/// The functions bounded, and how.
const BOUNDED: [(&str, Estimate); 9] = [
    ("repeat", repeat_bytes),
    ("lpad", pad_bytes),
    ("rpad", pad_bytes),
    ("replace", replace_bytes),
    ("regexp_replace", regexp_replace_bytes),
    ("array_repeat", array_repeat_bytes),
    ("array_resize", array_resize_bytes),
    ("range", range_bytes),
    ("generate_series", range_bytes),
];

/// Replaces each bounded function registered in `ctx` by its accounted twin.
pub fn register(ctx: &SessionContext) -> Result<()> {
    let pool = ctx.runtime_env().memory_pool.clone();
    for (name, estimate) in BOUNDED {
        let Ok(inner) = ctx.udf(name) else { continue };
        let bounded = Bounded { inner: inner.inner().clone(), estimate, pool: pool.clone() };
        ctx.register_udf(ScalarUDF::new_from_impl(bounded));
    }
    Ok(())
}

/// A function whose result is reserved from the pool before it runs.
#[derive(Debug)]
struct Bounded {
    inner: Arc<dyn ScalarUDFImpl>,
    estimate: Estimate,
    pool: Arc<dyn MemoryPool>,
}

impl PartialEq for Bounded {
    fn eq(&self, other: &Self) -> bool {
        self.inner.name() == other.inner.name() && (*self.inner).dyn_eq(&*other.inner as &dyn Any)
    }
}

impl Eq for Bounded {}

impl Hash for Bounded {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.name().hash(state);
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = if args.args.iter().any(|a| matches!(a, ColumnarValue::Array(_))) { args.number_rows } else { 1 };
        let bytes = (self.estimate)(&args.args, rows);
        let reservation = MemoryConsumer::new(format!("{}()", self.inner.name())).register(&self.pool);
        let wanted = usize::try_from(bytes).unwrap_or(usize::MAX);
        reservation.try_grow(wanted).map_err(|e| {
            datafusion::error::DataFusionError::ResourcesExhausted(format!(
                "{}() would return about {} MiB: {e}",
                self.inner.name(),
                bytes >> 20
            ))
        })?;
        self.inner.invoke_with_args(args)
    }
}

/// Each row's value of an argument, as the Arrow type `to`, or `None`.
fn column(arg: &ColumnarValue, rows: usize, to: &DataType) -> Option<ArrayRef> {
    let array = match arg {
        ColumnarValue::Array(array) => array.clone(),
        ColumnarValue::Scalar(scalar) => scalar.to_array_of_size(rows.max(1)).ok()?,
    };
    arrow::compute::cast(&array, to).ok()
}

/// Byte length of each row of a string argument (0 for null or non-text).
fn lengths(arg: &ColumnarValue, rows: usize) -> Vec<u128> {
    let Some(array) = column(arg, rows, &DataType::Utf8) else { return vec![0; rows] };
    let strings = array.as_string::<i32>();
    (0..rows).map(|i| if strings.is_null(i) { 0 } else { strings.value_length(i) as u128 }).collect()
}

/// Each row of an integer argument, negatives and nulls as 0.
fn counts(arg: &ColumnarValue, rows: usize) -> Vec<u128> {
    let Some(array) = column(arg, rows, &DataType::Int64) else { return vec![0; rows] };
    let ints = array.as_primitive::<Int64Type>();
    (0..rows).map(|i| if ints.is_null(i) { 0 } else { ints.value(i).max(0) as u128 }).collect()
}

fn arg(args: &[ColumnarValue], i: usize) -> Option<&ColumnarValue> {
    args.get(i)
}

fn sum(rows: usize, f: impl Fn(usize) -> u128) -> u128 {
    (0..rows).map(f).fold(0u128, u128::saturating_add)
}

fn repeat_bytes(args: &[ColumnarValue], rows: usize) -> u128 {
    let (Some(s), Some(n)) = (arg(args, 0), arg(args, 1)) else { return 0 };
    let (s, n) = (lengths(s, rows), counts(n, rows));
    sum(rows, |i| s[i].saturating_mul(n[i]))
}

/// A padded string is `n` characters, each up to 4 bytes.
fn pad_bytes(args: &[ColumnarValue], rows: usize) -> u128 {
    let Some(n) = arg(args, 1) else { return 0 };
    let n = counts(n, rows);
    sum(rows, |i| n[i].saturating_mul(4))
}

fn replace_bytes(args: &[ColumnarValue], rows: usize) -> u128 {
    let (Some(s), Some(from), Some(to)) = (arg(args, 0), arg(args, 1), arg(args, 2)) else { return 0 };
    let (s, from, to) = (lengths(s, rows), lengths(from, rows), lengths(to, rows));
    // Every occurrence of `from` becomes `to` (DataFusion leaves a string
    // alone when `from` is empty).
    sum(rows, |i| s[i] + s[i].checked_div(from[i]).map_or(0, |n| n.saturating_mul(to[i])))
}

fn regexp_replace_bytes(args: &[ColumnarValue], rows: usize) -> u128 {
    let (Some(s), Some(to)) = (arg(args, 0), arg(args, 2)) else { return 0 };
    let (s, to) = (lengths(s, rows), lengths(to, rows));
    // A pattern may match (empty) at every position, and each reference to
    // a group in the replacement may copy up to the whole input.
    sum(rows, |i| s[i] + (s[i] + 1).saturating_mul(to[i].saturating_add(s[i].saturating_mul(to[i] / 2))))
}

/// The bytes of one element of an array argument's kind.
fn element_bytes(arg: &ColumnarValue, rows: usize) -> Vec<u128> {
    match arg.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            lengths(arg, rows).into_iter().map(|n| n + 16).collect()
        }
        _ => vec![16; rows],
    }
}

fn array_repeat_bytes(args: &[ColumnarValue], rows: usize) -> u128 {
    let (Some(element), Some(n)) = (arg(args, 0), arg(args, 1)) else { return 0 };
    let (size, n) = (element_bytes(element, rows), counts(n, rows));
    sum(rows, |i| size[i].saturating_mul(n[i]))
}

fn array_resize_bytes(args: &[ColumnarValue], rows: usize) -> u128 {
    let Some(n) = arg(args, 1) else { return 0 };
    let size = arg(args, 2).map_or(vec![16; rows], |value| element_bytes(value, rows));
    let n = counts(n, rows);
    sum(rows, |i| size[i].saturating_mul(n[i]))
}

/// `range(stop)`, `range(start, stop[, step])` over integers, dates or
/// timestamps: the number of elements, eight bytes each.
fn range_bytes(args: &[ColumnarValue], rows: usize) -> u128 {
    let temporal = args
        .first()
        .is_some_and(|a| matches!(a.data_type(), DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)));
    let elements: Vec<u128> = if temporal { temporal_elements(args, rows) } else { integer_elements(args, rows) };
    sum(rows, |i| elements[i].saturating_mul(8))
}

fn signed(arg: &ColumnarValue, rows: usize) -> Vec<Option<i64>> {
    let Some(array) = column(arg, rows, &DataType::Int64) else { return vec![None; rows] };
    let ints = array.as_primitive::<Int64Type>();
    (0..rows).map(|i| (!ints.is_null(i)).then(|| ints.value(i))).collect()
}

fn integer_elements(args: &[ColumnarValue], rows: usize) -> Vec<u128> {
    let values: Vec<Vec<Option<i64>>> = args.iter().map(|a| signed(a, rows)).collect();
    (0..rows)
        .map(|i| {
            let at = |k: usize| values.get(k).and_then(|v| v[i]);
            let (start, stop, step) = match args.len() {
                1 => (Some(0), at(0), Some(1)),
                2 => (at(0), at(1), Some(1)),
                _ => (at(0), at(1), at(2)),
            };
            match (start, stop, step) {
                (Some(start), Some(stop), Some(step)) if step != 0 => {
                    (i128::from(stop) - i128::from(start)).unsigned_abs() / i128::from(step).unsigned_abs() + 1
                }
                _ => 0,
            }
        })
        .collect()
}

fn temporal_elements(args: &[ColumnarValue], rows: usize) -> Vec<u128> {
    let seconds = |arg: &ColumnarValue| -> Vec<Option<i64>> {
        let Some(array) = column(arg, rows, &DataType::Timestamp(TimeUnit::Second, None)) else {
            return vec![None; rows];
        };
        let ts = array.as_primitive::<TimestampSecondType>();
        (0..rows).map(|i| (!ts.is_null(i)).then(|| ts.value(i))).collect()
    };
    let (Some(start), Some(stop), Some(step)) = (args.first(), args.get(1), args.get(2)) else { return vec![0; rows] };
    let (start, stop) = (seconds(start), seconds(stop));
    // The shortest a step can be: a month as 28 days.
    let step: Vec<Option<f64>> =
        match column(step, rows, &DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano)) {
            Some(array) => {
                let steps = array.as_primitive::<IntervalMonthDayNanoType>();
                (0..rows)
                    .map(|i| {
                        (!steps.is_null(i)).then(|| {
                            let v = steps.value(i);
                            f64::from(v.months) * 28.0 * 86_400.0
                                + f64::from(v.days) * 86_400.0
                                + v.nanoseconds as f64 / 1e9
                        })
                    })
                    .collect()
            }
            None => vec![None; rows],
        };
    (0..rows)
        .map(|i| match (start[i], stop[i], step[i]) {
            (Some(a), Some(b), Some(step)) if step.abs() > 0.0 => {
                let n = ((i128::from(b) - i128::from(a)).unsigned_abs() as f64 / step.abs()).ceil() + 1.0;
                if n.is_finite() { n.min(u128::MAX as f64) as u128 } else { u128::MAX }
            }
            _ => 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::FairSpillPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::prelude::SessionConfig;

    fn ctx(pool_bytes: usize) -> SessionContext {
        let runtime =
            RuntimeEnvBuilder::new().with_memory_pool(Arc::new(FairSpillPool::new(pool_bytes))).build_arc().unwrap();
        let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), runtime);
        register(&ctx).unwrap();
        ctx
    }

    async fn run(ctx: &SessionContext, sql: &str) -> Result<Vec<arrow::array::RecordBatch>> {
        ctx.sql(sql).await?.collect().await
    }

    #[tokio::test]
    async fn results_bigger_than_the_pool_are_refused_and_small_ones_run() {
        let ctx = ctx(64 << 20);
        for sql in [
            "SELECT length(repeat('a', 1000000000))",
            "SELECT lpad('x', 100000000)",
            "SELECT rpad('x', 100000000, 'ab')",
            "SELECT length(replace(repeat('a', 10000), 'a', repeat('c', 10000)))",
            "SELECT regexp_replace(repeat('a', 10000), '', repeat('b', 10000), 'g')",
            "SELECT cardinality(array_repeat(1, 100000000))",
            "SELECT cardinality(array_resize(make_array(1), 100000000, 0))",
            "SELECT cardinality(range(100000000))",
            "SELECT cardinality(generate_series(1, 100000000))",
            "SELECT cardinality(range(TIMESTAMP '1970-01-01', TIMESTAMP '2100-01-01', INTERVAL '1 second'))",
            "SELECT cardinality(range(DATE '0001-01-01', DATE '9999-01-01', INTERVAL '1 minute'))",
        ] {
            let err = run(&ctx, sql).await.expect_err(sql);
            assert!(
                matches!(err.find_root(), datafusion::error::DataFusionError::ResourcesExhausted(_)),
                "{sql}: {err}"
            );
        }
        let ok = run(&ctx, "SELECT length(repeat('ab', 1000)) AS n, cardinality(range(1, 11)) AS r").await.unwrap();
        assert_eq!(ok[0].column(0).as_primitive::<arrow::datatypes::Int32Type>().value(0), 2000);
        assert_eq!(ok[0].column(1).as_primitive::<arrow::datatypes::UInt64Type>().value(0), 10);
        let padded = run(&ctx, "SELECT lpad('7', 3, '0') AS p").await.unwrap();
        assert_eq!(padded[0].column(0).as_string::<i32>().value(0), "007");
    }

    #[test]
    fn estimates_follow_each_row() {
        let s = ColumnarValue::Array(Arc::new(arrow::array::StringArray::from(vec!["ab", "abc"])));
        let n = ColumnarValue::Array(Arc::new(arrow::array::Int64Array::from(vec![10, -5])));
        assert_eq!(repeat_bytes(&[s, n], 2), 20);
        let one = ColumnarValue::Scalar(datafusion::common::ScalarValue::Int64(Some(1)));
        let ten = ColumnarValue::Scalar(datafusion::common::ScalarValue::Int64(Some(10)));
        assert_eq!(range_bytes(&[one, ten], 1), 10 * 8);
    }
}
