//! The evaluator's checks.

use super::*;

fn builtin(name: &str) -> Arc<PipelineSpec> {
    let specs = crate::builtin::builtin_pipelines().unwrap();
    Arc::new(specs.into_iter().find(|s| s.name == name).unwrap())
}

#[tokio::test]
async fn a_pipeline_that_serves_a_figure_must_write_its_columns() {
    let manifest =
        "source = \"order_items\"\nserves = \"revenue_by_category\"\n[window]\nkind = \"tumbling\"\nsize = \"1h\"";
    let sql = "SELECT window_start, window_end, category, SUM(line_total) AS revenue FROM input GROUP BY 1, 2, 3";
    let spec = Arc::new(crate::pipeline::parse_pipeline("mine", manifest, sql).unwrap());
    let error = Evaluator::new(spec).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("serves revenue_by_category") && error.contains("currency, units"), "{error}");
}

#[tokio::test]
async fn the_engine_keeps_only_the_columns_a_pipeline_needs_and_outputs_plain_strings() {
    let eval = Evaluator::new(builtin("revenue_by_category_1m")).await.unwrap();
    // The SQL's columns, the time and stream position, and the item's
    // identity for late_events; not customer_id, product_id, unit_price.
    let expected = ["order_id", "line_no", "placed_at", "category", "quantity", "line_total", "currency", "stream_seq"];
    assert_eq!(eval.source_columns(), expected);
    // The operator buffers all but the late-row id's line_no: the SQL
    // reads order_id (a distinct count), not line_no.
    let buffered = ["order_id", "placed_at", "category", "quantity", "line_total", "currency", "stream_seq"];
    assert_eq!(eval.input_columns(), buffered);
    assert_eq!(eval.input_schema.field_with_name("category").unwrap().data_type(), &DataType::Utf8);
    assert_eq!(eval.output_schema.field_with_name("category").unwrap().data_type(), &DataType::Utf8);

    let sessions = Evaluator::new(builtin("customer_sessions")).await.unwrap();
    assert!(sessions.source_columns().iter().any(|c| c == "customer_id"), "a session pipeline keeps its key");
    for eval in [&eval, &sessions] {
        assert!(eval.output_schema.fields().iter().all(|f| f.data_type() != &DataType::Utf8View));
    }
}

#[tokio::test]
async fn the_sql_is_planned_once_and_each_round_reads_only_its_own_rows() {
    for spec in crate::builtin::builtin_pipelines().unwrap() {
        let eval = Evaluator::new(Arc::new(spec)).await.unwrap();
        assert!(eval.reusable, "{} is planned once", eval.spec.name);
    }
    // A join keeps its build side between runs: planned every round.
    let spec = crate::pipeline::parse_pipeline(
        "self_join",
        "source = \"order_events\"\n[window]\nkind = \"tumbling\"\nsize = \"1h\"\n",
        "SELECT a.window_start, a.window_end, count(*) AS n FROM input a JOIN input b USING (event_id) GROUP BY 1, 2",
    )
    .unwrap();
    assert!(!Evaluator::new(Arc::new(spec)).await.unwrap().reusable);

    // Minute 0 gets 2 units of 10.00, minute 1 gets 1 of 3.00; each closes
    // in its own round, through the one plan.
    let spec = builtin("revenue_by_category_1m");
    let eval = Evaluator::new(Arc::clone(&spec)).await.unwrap();
    let mut op = Operator::new(spec).keep_columns(eval.input_columns()).unwrap();
    let items = |seq: u64, second: i64, quantity: u32, price: i64| {
        let mut order = crate::rows::tests::order("c", &[("p", quantity, price)], "USD");
        order.placed_at = chrono::DateTime::from_timestamp(second, 0).unwrap();
        crate::rows::order_items_batch(&[(seq, order)], &Default::default()).unwrap()
    };
    let mut revenue_per_round = Vec::new();
    for (seq, second, quantity, price) in [(1, 10, 2, 1000), (2, 70, 1, 300), (3, 130, 1, 1)] {
        op.push(&items(seq, second, quantity, price), &mut Vec::new()).unwrap();
        let emissions = op.take_emissions(seq);
        if emissions.is_empty() {
            continue;
        }
        let out = eval.evaluate(&mut op, emissions).await.unwrap();
        let out = concat_batches(&eval.output_schema, &out).unwrap();
        let revenue = out.column_by_name("revenue").unwrap().as_primitive::<arrow::datatypes::Decimal128Type>();
        let units = out.column_by_name("units").unwrap().as_primitive::<arrow::datatypes::Int64Type>();
        let orders = out.column_by_name("orders").unwrap().as_primitive::<arrow::datatypes::Int64Type>();
        revenue_per_round.push((out.num_rows(), revenue.value(0), units.value(0), orders.value(0)));
    }
    // Decimal(38, 4): 20.00 and 3.00, one order each.
    assert_eq!(revenue_per_round, vec![(1, 200_000, 2, 1), (1, 30_000, 1, 1)]);
}

#[tokio::test]
async fn string_views_from_a_reader_give_the_same_windows_as_plain_strings() {
    let spec = builtin("revenue_by_category_1m");
    let eval = Evaluator::new(Arc::clone(&spec)).await.unwrap();
    // Not order_id or line_no: late_events ids read them row by row.
    assert_eq!(eval.view_columns(), ["category", "currency"]);
    let sessions = Evaluator::new(builtin("customer_sessions")).await.unwrap();
    assert!(!sessions.view_columns().contains(&"customer_id".to_string()), "a session key is read per row");

    let categories = crate::rows::Categories::from([("p".to_string(), "toys".to_string())]);
    let items: Vec<RecordBatch> = [(1, 10, "p"), (2, 20, "q"), (3, 30, "p"), (4, 130, "p")]
        .into_iter()
        .map(|(seq, second, product)| {
            let mut order = crate::rows::tests::order("c", &[(product, 2, 250)], "EUR");
            order.placed_at = chrono::DateTime::from_timestamp(second, 0).unwrap();
            crate::rows::order_items_batch(&[(seq, order)], &categories).unwrap()
        })
        .collect();
    let as_views = |batch: &RecordBatch| {
        let (fields, columns): (Vec<Field>, Vec<ArrayRef>) = batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, c)| match f.name().as_str() {
                "category" | "currency" => (
                    f.as_ref().clone().with_data_type(DataType::Utf8View),
                    arrow::compute::cast(c, &DataType::Utf8View).unwrap(),
                ),
                _ => (f.as_ref().clone(), Arc::clone(c)),
            })
            .unzip();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    };
    let windows = |views: bool| {
        let (spec, items) = (Arc::clone(&spec), items.clone());
        async move {
            let eval = Evaluator::new(Arc::clone(&spec)).await.unwrap();
            let mut op = Operator::new(spec).keep_columns(eval.input_columns()).unwrap();
            let mut out = Vec::new();
            for (seq, batch) in (1..).zip(&items) {
                let batch = if views { as_views(batch) } else { batch.clone() };
                op.push(&batch, &mut Vec::new()).unwrap();
                let emissions = op.take_emissions(seq);
                out.extend(eval.evaluate(&mut op, emissions).await.unwrap());
            }
            concat_batches(&eval.output_schema, &out).unwrap()
        }
    };
    let plain = windows(false).await;
    assert_eq!(plain.num_rows(), 2, "minute 0: toys and uncategorized");
    assert_eq!(windows(true).await, plain);
}

#[tokio::test]
async fn a_distinct_count_runs_in_one_pass_and_the_output_keeps_its_types() {
    let eval = Evaluator::new(builtin("revenue_by_category_1m")).await.unwrap();
    let plan = eval.ctx.sql(&eval.spec.sql).await.unwrap().into_optimized_plan().unwrap();
    let plan = plan.display_indent().to_string();
    assert!(plan.contains("count_distinct_strings(input.order_id)"), "{plan}");
    // DataFusion's own plan (a group-by per order, then a sum of sums)
    // types the revenue Decimal128(38, 4); the output stays so.
    let revenue = eval.output_schema.field_with_name("revenue").unwrap();
    assert_eq!(revenue.data_type(), &DataType::Decimal128(38, 4));
}

/// The status events of one seeded day of 3,000 orders.
fn seeded_day_events(seed: u64) -> RecordBatch {
    // The seed crate (a dev-dependency) builds on this one: only arrow
    // and schemas types cross back, which both builds share.
    use seed::{SeedConfig, SeedScreen, categories_of, day_batches, generate_day, products, settle};
    let config = SeedConfig::new(seed, 3_000, 1, chrono::NaiveDate::from_ymd_opt(2026, 3, 20).unwrap());
    let catalog = products(&config);
    let mut day = generate_day(&config, &catalog, 0, 3_000);
    settle(&config, 0, &mut day, &mut SeedScreen::builtin().unwrap());
    let tables = day_batches(&day, &categories_of(&catalog)).unwrap();
    tables.into_iter().find(|(t, _)| *t == schemas::tables::Table::OrderEvents).unwrap().1
}

#[tokio::test]
async fn rows_the_sql_filters_out_first_are_not_buffered_yet_count_and_may_be_late() {
    let events = seeded_day_events(7);
    // The day in time order, then again its first rows (too late) and
    // rows from the last hours (late, within the lateness): sequences
    // renumbered in arrival order.
    let order = arrow::compute::sort_to_indices(events.column_by_name("occurred_at").unwrap(), None, None).unwrap();
    let sorted = take_record_batch(&events, &order).unwrap();
    let n = sorted.num_rows();
    let arrivals =
        [sorted.slice(0, n / 2), sorted.slice(n / 2, n - n / 2), sorted.slice(0, 500), sorted.slice(n - 2000, 2000)];
    let mut seq = 0;
    let batches: Vec<RecordBatch> = arrivals
        .iter()
        .map(|b| {
            let seqs = Int64Array::from_iter_values((seq + 1..=seq + b.num_rows() as i64).collect::<Vec<_>>());
            seq += b.num_rows() as i64;
            let at = b.schema().index_of("stream_seq").unwrap();
            let mut columns = b.columns().to_vec();
            columns[at] = Arc::new(seqs);
            RecordBatch::try_new(b.schema(), columns).unwrap()
        })
        .collect();
    let manifest = "source = \"order_events\"\n[window]\nkind = \"tumbling\"\nsize = \"1h\"\n\
                    [watermark]\nallowed_lateness = \"2h\"\n";
    let spec =
        Arc::new(crate::pipeline::parse_pipeline("reviews_1h", manifest, &builtin("fraud_reviews_1d").sql).unwrap());
    let eval = Evaluator::new(Arc::clone(&spec)).await.unwrap();
    assert!(!eval.input_columns().contains(&"event_id".to_string()), "the late-row id is not buffered");
    let run = |filtered: bool| {
        let (spec, eval, batches) = (Arc::clone(&spec), &eval, &batches);
        async move {
            let mut op = Operator::new(spec).keep_columns(eval.input_columns()).unwrap();
            let (mut out, mut late, mut most_buffered) = (Vec::new(), Vec::new(), 0);
            for batch in batches {
                let read = if filtered { eval.rows_read(batch).unwrap() } else { None };
                op.push_reading(batch, read.as_ref(), &mut late).unwrap();
                most_buffered = most_buffered.max(op.buffer.iter().map(RecordBatch::num_rows).sum::<usize>());
                let last = batch.column_by_name("stream_seq").unwrap().as_primitive::<arrow::datatypes::Int64Type>();
                let emissions = op.take_emissions(last.value(last.len() - 1) as u64);
                out.extend(eval.evaluate(&mut op, emissions).await.unwrap());
            }
            op.close_all(seq as u64);
            let emissions = op.take_emissions(seq as u64);
            out.extend(eval.evaluate(&mut op, emissions).await.unwrap());
            (concat_batches(&eval.output_schema, &out).unwrap(), late, most_buffered)
        }
    };
    let (all_out, all_late, all_buffered) = run(false).await;
    let (out, late, buffered) = run(true).await;
    assert!(out.num_rows() > 0 && !late.is_empty(), "{} rows, {} late", out.num_rows(), late.len());
    let versions = out.column_by_name("window_version").unwrap().as_primitive::<arrow::datatypes::Int32Type>();
    assert!(versions.iter().any(|v| v > Some(1)), "a late row restated a window");
    assert_eq!(out, all_out, "the same windows, versions and late counts");
    assert_eq!(late, all_late, "every too-late row reported, reviews or not");
    assert!(buffered * 10 < all_buffered, "buffered {buffered} rows against {all_buffered}");
}

#[tokio::test]
async fn rows_the_sql_filters_out_first_can_be_dropped_before_windowing() {
    let events = seeded_day_events(5);
    let reviews = Evaluator::new(builtin("fraud_reviews_1d")).await.unwrap();
    let kept = reviews.filter_rows(&project(&events, reviews.source_columns()).unwrap()).unwrap();
    let text = |b: &RecordBatch, c: &str| -> Vec<Option<String>> {
        b.column_by_name(c).unwrap().as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect()
    };
    let is_review =
        |s: &Option<String>, f: &Option<String>| s.as_deref() == Some("flagged") || f.as_deref() == Some("flagged");
    let expected =
        text(&events, "status").iter().zip(text(&events, "from_status")).filter(|(s, f)| is_review(s, f)).count();
    assert!(expected > 0 && expected < events.num_rows() / 10, "a few review events among {}", events.num_rows());
    assert_eq!(kept.num_rows(), expected);
    assert!(text(&kept, "status").iter().zip(text(&kept, "from_status")).all(|(s, f)| is_review(s, &f)));

    // No filter: every row stays. Two scans of input: no single filter
    // holds for every row, so none is applied.
    let revenue = Evaluator::new(builtin("revenue_by_category_1m")).await.unwrap();
    assert!(revenue.row_filter.is_none());
    let self_join = "SELECT a.window_start, a.window_end, count(*) AS n FROM input a \
                     JOIN (SELECT order_id FROM input WHERE status = 'flagged') b USING (order_id) GROUP BY 1, 2";
    let spec = crate::pipeline::parse_pipeline(
        "self_join",
        "source = \"order_events\"\n[window]\nkind = \"tumbling\"\nsize = \"1h\"\n",
        self_join,
    )
    .unwrap();
    let joined = Evaluator::new(Arc::new(spec)).await.unwrap();
    assert!(joined.row_filter.is_none());
    assert_eq!(
        joined.filter_rows(&project(&events, joined.source_columns()).unwrap()).unwrap().num_rows(),
        events.num_rows()
    );
}
