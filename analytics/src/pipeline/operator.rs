//! The windowed operator of one pipeline: assigns each source row to its
//! windows in stream order, tracks the watermark, and decides when a window
//! is emitted — final on close, provisionally each batch with early
//! results, and again (a new `window_version`) when a late row restates it.
//! Rows too late for any restatement become `late_events` rows.
//!
//! Every decision is a function of the rows in stream order (plus, in a
//! live job, idle ticks), so a replay of one range emits the same windows.
//! The SQL runs once per batch over all windows due ([`super::eval`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{AsArray, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::{filter_record_batch, take_record_batch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use serde::{Deserialize, Serialize};

use super::manifest::{PipelineSpec, Windowing};
use crate::AnalyticsError;
use crate::window::{Arrival, Sessions, Watermark, Window};

/// A window's identity: its bounds and the session key (empty for fixed
/// windows). Ordered by the bounds first, then the key: fixed windows never
/// compare keys at all (this lookup runs per row and per window).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WindowKey {
    pub start_ms: i64,
    pub end_ms: i64,
    pub key: String,
}

impl Ord for WindowKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.start_ms.cmp(&other.start_ms).then(self.end_ms.cmp(&other.end_ms)).then_with(|| {
            if self.key.is_empty() && other.key.is_empty() {
                std::cmp::Ordering::Equal
            } else {
                self.key.cmp(&other.key)
            }
        })
    }
}

impl PartialOrd for WindowKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl WindowKey {
    fn fixed(w: Window) -> Self {
        WindowKey { key: String::new(), start_ms: w.start_ms, end_ms: w.end_ms }
    }
    fn keyed(key: &str, w: Window) -> Self {
        WindowKey { key: key.to_string(), start_ms: w.start_ms, end_ms: w.end_ms }
    }
    pub fn window(&self) -> Window {
        Window { start_ms: self.start_ms, end_ms: self.end_ms }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowState {
    pub rows: u64,
    pub late_count: i64,
    /// How many versions were emitted so far.
    pub versions: i32,
    /// Emitted final at least once (the watermark passed its end).
    pub closed: bool,
}

/// One emission of one window: evaluated over its rows up to `upto_seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emission {
    pub window: WindowKey,
    pub version: i32,
    pub watermark_ms: i64,
    pub late_count: i64,
    pub upto_seq: u64,
    pub is_final: bool,
}

/// A row beyond the allowed lateness, for `late_events`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LateRow {
    pub record_id: String,
    pub event_ms: i64,
    pub window: Window,
    pub watermark_ms: i64,
    pub stream_seq: u64,
}

/// What survives a restart (with the buffered rows, stored as Arrow IPC).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OperatorState {
    pub watermark: Watermark,
    pub windows: Vec<(WindowKey, WindowState)>,
    pub sessions: Vec<(String, Sessions)>,
}

pub struct Operator {
    pub spec: Arc<PipelineSpec>,
    watermark: Watermark,
    windows: BTreeMap<WindowKey, WindowState>,
    /// Windows not yet closed, by end: the next to close is first.
    open_by_end: BTreeSet<(i64, WindowKey)>,
    sessions: HashMap<String, Sessions>,
    /// Source rows of windows still within their lateness.
    pub(crate) buffer: Vec<RecordBatch>,
    /// Cumulative pipelines: each step's SQL output, by step start.
    pub(crate) partials: BTreeMap<i64, RecordBatch>,
    pending: Vec<Emission>,
    restate: BTreeSet<WindowKey>,
    dirty: BTreeSet<WindowKey>,
    pub late_total: u64,
    /// The source columns buffered (all when `None`): see
    /// [`super::Evaluator::source_columns`].
    columns: Option<Vec<String>>,
    /// The open windows of the last on-time row of fixed windowing, and
    /// how many rows since fell in exactly those windows, on time: not yet
    /// added to their `rows`. A time-ordered stream lands row after row in
    /// the same windows, and counting them here spares a map lookup per
    /// row and window. Settled at the end of every [`Operator::push`].
    run: Vec<WindowKey>,
    run_rows: u64,
    /// The event times in exactly the run's windows (`WindowKind::span_of`)
    /// and the run's window that ends first: a row in the span continues
    /// the run while that window is on time.
    run_span: Option<(Window, Window)>,
}

impl Operator {
    pub fn new(spec: Arc<PipelineSpec>) -> Self {
        let watermark = Watermark::new(spec.out_of_order_ms, spec.allowed_lateness_ms);
        Operator {
            spec,
            watermark,
            windows: BTreeMap::new(),
            open_by_end: BTreeSet::new(),
            sessions: HashMap::new(),
            buffer: Vec::new(),
            partials: BTreeMap::new(),
            pending: Vec::new(),
            restate: BTreeSet::new(),
            dirty: BTreeSet::new(),
            late_total: 0,
            columns: None,
            run: Vec::new(),
            run_rows: 0,
            run_span: None,
        }
    }

    /// Buffers only `columns` of the source rows, the restored ones too (a
    /// snapshot taken before a pipeline's SQL changed holds other columns,
    /// and one snapshot file holds one schema).
    pub fn keep_columns(mut self, columns: &[String]) -> Result<Self, AnalyticsError> {
        self.buffer = self.buffer.iter().map(|b| project(b, columns)).collect::<Result<_, _>>()?;
        self.columns = Some(columns.to_vec());
        Ok(self)
    }

    pub fn restore(
        spec: Arc<PipelineSpec>,
        state: OperatorState,
        buffer: Vec<RecordBatch>,
        partials: BTreeMap<i64, RecordBatch>,
    ) -> Self {
        let mut op = Operator::new(spec);
        op.watermark = state.watermark;
        op.windows = state.windows.into_iter().collect();
        op.open_by_end = op.windows.iter().filter(|(_, s)| !s.closed).map(|(k, _)| (k.end_ms, k.clone())).collect();
        op.sessions = state.sessions.into_iter().collect();
        op.buffer = buffer;
        op.partials = partials;
        op
    }

    pub fn state(&self) -> OperatorState {
        let mut sessions: Vec<(String, Sessions)> = self.sessions.iter().map(|(k, s)| (k.clone(), s.clone())).collect();
        sessions.sort_by(|a, b| a.0.cmp(&b.0));
        OperatorState {
            watermark: self.watermark,
            windows: self.windows.iter().map(|(k, s)| (k.clone(), s.clone())).collect(),
            sessions,
        }
    }

    pub fn watermark_ms(&self) -> Option<i64> {
        self.watermark.current()
    }

    pub fn open_windows(&self) -> usize {
        self.open_by_end.len()
    }

    /// Feeds a batch of source rows (in stream order); too-late rows go to `late`.
    pub fn push(&mut self, batch: &RecordBatch, late: &mut Vec<LateRow>) -> Result<(), AnalyticsError> {
        self.push_reading(batch, None, late)
    }

    /// [`Operator::push`], buffering only the rows `read` marks (all when
    /// `None`): the others count in their windows, move the watermark and
    /// may be late like any row, but the SQL would drop them before reading
    /// anything ([`super::Evaluator::rows_read`]), so no emission needs them.
    pub fn push_reading(
        &mut self,
        batch: &RecordBatch,
        read: Option<&BooleanArray>,
        late: &mut Vec<LateRow>,
    ) -> Result<(), AnalyticsError> {
        let spec = Arc::clone(&self.spec);
        let column = |name: &str| {
            batch.column_by_name(name).ok_or_else(|| AnalyticsError::pipeline(&spec.name, format!("no column {name}")))
        };
        let times = column(spec.time_column())?.as_primitive::<TimestampMicrosecondType>().clone();
        let seqs = column("stream_seq")?.as_primitive::<Int64Type>().clone();
        let keys = match spec.session_key() {
            Some(key) => Some(column(key)?.as_string::<i32>().clone()),
            None => None,
        };
        let mut keep: Vec<u32> = Vec::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            let ts = times.value(i).div_euclid(1000);
            let seq = seqs.value(i) as u64;
            let kept = match &keys {
                Some(keys) => self.assign_session(keys.value(i), ts, || record_id(&spec, batch, i), seq, late),
                None => self.assign_fixed(ts, || record_id(&spec, batch, i), seq, late),
            };
            if kept && read.is_none_or(|read| read.value(i)) {
                keep.push(i as u32);
            }
            self.watermark.observe(ts);
            self.close_ready(seq);
        }
        self.settle_run();
        if !keep.is_empty() {
            let kept = match &self.columns {
                Some(columns) => project(batch, columns)?,
                None => batch.clone(),
            };
            let rows =
                if keep.len() == batch.num_rows() { kept } else { take_record_batch(&kept, &UInt32Array::from(keep))? };
            self.buffer.push(rows);
        }
        Ok(())
    }

    /// Whether a row at `ts` falls in exactly the run's windows, each still
    /// on time (so open: the watermark never goes back). In the run's span
    /// a row has the run's windows; outside it, others. No run, no span.
    fn continues_run(&self, ts: i64) -> bool {
        let Some((span, first_to_end)) = self.run_span else { return false };
        span.contains(ts) && self.watermark.classify(&first_to_end) == Arrival::OnTime
    }

    /// Adds the run's rows to its windows' counts and ends it.
    fn settle_run(&mut self) {
        let rows = std::mem::take(&mut self.run_rows);
        self.run_span = None;
        for key in self.run.drain(..) {
            if let Some(state) = self.windows.get_mut(&key) {
                state.rows += rows;
            }
        }
    }

    fn assign_fixed(&mut self, ts: i64, record_id: impl Fn() -> String, seq: u64, late: &mut Vec<LateRow>) -> bool {
        let Some(kind) = self.spec.evaluation_window() else { return false };
        if self.continues_run(ts) {
            // Already in `dirty` (early results) and `open_by_end`.
            self.run_rows += 1;
            return true;
        }
        self.settle_run();
        let mut run = Vec::new();
        let mut all_on_time = true;
        let mut kept = false;
        for window in kind.windows_of(ts) {
            let key = WindowKey::fixed(window);
            let arrival = self.watermark.classify(&window);
            all_on_time &= arrival == Arrival::OnTime;
            match arrival {
                Arrival::TooLate => {
                    self.late_total += 1;
                    late.push(LateRow {
                        record_id: record_id(),
                        event_ms: ts,
                        window,
                        watermark_ms: self.watermark.current().unwrap_or(i64::MIN),
                        stream_seq: seq,
                    });
                }
                Arrival::Late => {
                    let state = self.windows.entry(key.clone()).or_default();
                    state.rows += 1;
                    state.late_count += 1;
                    state.closed = true;
                    if let Windowing::Cumulative { size_ms, .. } = &self.spec.windowing {
                        // A late step changes every later running total of its period.
                        let period_end = window.start_ms.div_euclid(*size_ms) * size_ms + size_ms;
                        let later: Vec<WindowKey> = self
                            .windows
                            .range(key.clone()..)
                            .filter(|(k, s)| s.closed && k.end_ms <= period_end)
                            .map(|(k, _)| k.clone())
                            .collect();
                        self.restate.extend(later);
                    }
                    self.restate.insert(key);
                    kept = true;
                }
                Arrival::OnTime => {
                    let state = self.windows.entry(key.clone()).or_default();
                    if state.rows == 0 && !state.closed {
                        self.open_by_end.insert((window.end_ms, key.clone()));
                    }
                    state.rows += 1;
                    if self.spec.early_results {
                        self.dirty.insert(key.clone());
                    }
                    run.push(key);
                    kept = true;
                }
            }
        }
        if all_on_time {
            let first_to_end = run.iter().min_by_key(|k| k.end_ms).map(WindowKey::window);
            self.run_span = kind.span_of(ts).zip(first_to_end);
            self.run = run;
        }
        kept
    }

    fn assign_session(
        &mut self,
        key: &str,
        ts: i64,
        record_id: impl Fn() -> String,
        seq: u64,
        late: &mut Vec<LateRow>,
    ) -> bool {
        let Windowing::Session { gap_ms, .. } = self.spec.windowing else { return false };
        let wm = self.watermark.current();
        let own = Window { start_ms: ts, end_ms: ts + gap_ms };
        if wm.is_some_and(|wm| own.end_ms + self.spec.allowed_lateness_ms <= wm) {
            self.late_total += 1;
            late.push(LateRow {
                record_id: record_id(),
                event_ms: ts,
                window: own,
                watermark_ms: wm.unwrap_or(i64::MIN),
                stream_seq: seq,
            });
            return false;
        }
        let sessions = self.sessions.entry(key.to_string()).or_default();
        let before = sessions.windows.clone();
        let merged = sessions.add(ts, gap_ms);
        let mut state = WindowState::default();
        for old in before.iter().filter(|w| !sessions.windows.contains(w)) {
            let old_key = WindowKey::keyed(key, *old);
            if let Some(s) = self.windows.remove(&old_key) {
                state.rows += s.rows;
                state.late_count += s.late_count;
                state.versions = state.versions.max(s.versions);
                state.closed |= s.closed;
            }
            self.open_by_end.remove(&(old.end_ms, old_key.clone()));
            self.restate.remove(&old_key);
            self.dirty.remove(&old_key);
        }
        state.rows += 1;
        let new_key = WindowKey::keyed(key, merged);
        if state.closed || wm.is_some_and(|wm| merged.end_ms <= wm) {
            // It extends a session already emitted: restate it (merged bounds).
            state.late_count += 1;
            state.closed = true;
            self.restate.insert(new_key.clone());
        } else {
            self.open_by_end.insert((merged.end_ms, new_key.clone()));
            if self.spec.early_results {
                self.dirty.insert(new_key.clone());
            }
        }
        self.windows.insert(new_key, state);
        true
    }

    /// Emits (final) every open window the watermark has passed.
    fn close_ready(&mut self, seq: u64) {
        let Some(wm) = self.watermark.current() else { return };
        while let Some((end, _)) = self.open_by_end.first()
            && *end <= wm
        {
            let Some((_, key)) = self.open_by_end.pop_first() else { break };
            if let Some(state) = self.windows.get_mut(&key) {
                state.closed = true;
            }
            self.dirty.remove(&key);
            self.emit(key, wm, seq, true);
        }
    }

    /// Queues the window's next version.
    fn emit(&mut self, key: WindowKey, watermark_ms: i64, upto_seq: u64, is_final: bool) {
        let Some(state) = self.windows.get_mut(&key) else { return };
        state.versions += 1;
        self.pending.push(Emission {
            window: key,
            version: state.versions,
            watermark_ms,
            late_count: state.late_count,
            upto_seq,
            is_final,
        });
    }

    /// No input for `idle_for_ms`: let event time move on and close windows.
    pub fn on_idle(&mut self, idle_for_ms: i64, last_seq: u64) {
        self.watermark.on_idle(idle_for_ms, self.spec.idle_timeout_ms);
        self.close_ready(last_seq);
    }

    /// End of input (a replay's range): close every window.
    pub fn close_all(&mut self, last_seq: u64) {
        if let Some(end) = self.open_by_end.last().map(|(end, _)| *end) {
            self.watermark.observe(end + self.spec.out_of_order_ms);
        }
        self.close_ready(last_seq);
    }

    /// The batch is over: queue restatements and early results, and hand
    /// over every emission due.
    pub fn take_emissions(&mut self, last_seq: u64) -> Vec<Emission> {
        let wm = self.watermark.current().unwrap_or(i64::MIN);
        for key in std::mem::take(&mut self.restate) {
            self.emit(key, wm, last_seq, true);
        }
        for key in std::mem::take(&mut self.dirty) {
            if self.windows.get(&key).is_some_and(|s| !s.closed) {
                self.emit(key, wm, last_seq, false);
            }
        }
        std::mem::take(&mut self.pending)
    }

    /// Forgets windows past their lateness and the rows only they needed.
    pub fn expire(&mut self) -> Result<(), AnalyticsError> {
        let Some(wm) = self.watermark.current() else { return Ok(()) };
        let lateness = self.spec.allowed_lateness_ms;
        let expired = |end: i64| end + lateness <= wm;
        self.windows.retain(|key, state| !(state.closed && expired(key.end_ms)));
        for sessions in self.sessions.values_mut() {
            sessions.windows.retain(|w| !expired(w.end_ms));
        }
        self.sessions.retain(|_, s| !s.windows.is_empty());
        if let Windowing::Cumulative { size_ms, .. } = self.spec.windowing {
            self.partials.retain(|step_start, _| !expired(step_start.div_euclid(size_ms) * size_ms + size_ms));
        }
        // Batch by batch: most are wholly kept (recent) or wholly dropped
        // (old); of the others, one run of kept rows is a zero-copy slice.
        let spec = Arc::clone(&self.spec);
        let kind = spec.evaluation_window();
        let mut kept = Vec::with_capacity(self.buffer.len());
        // Rows in time order come span after span (`WindowKind::span_of`):
        // the last span's answer holds for the rows that follow in it.
        let mut last: Option<(Window, bool)> = None;
        for batch in std::mem::take(&mut self.buffer) {
            let times =
                batch.column_by_name(spec.time_column()).map(|c| c.as_primitive::<TimestampMicrosecondType>().clone());
            let Some(times) = times else { continue };
            let keys = spec.session_key().and_then(|k| batch.column_by_name(k)).map(|c| c.as_string::<i32>().clone());
            // The kept rows, as runs [start, end).
            let mut runs: Vec<(usize, usize)> = Vec::new();
            for i in 0..batch.num_rows() {
                let ts = times.value(i).div_euclid(1000);
                let retained = match (&keys, kind) {
                    (Some(keys), _) => {
                        self.sessions.get(keys.value(i)).is_some_and(|s| s.windows.iter().any(|w| w.contains(ts)))
                    }
                    (None, Some(kind)) => match last {
                        Some((span, live)) if span.contains(ts) => live,
                        _ => {
                            let live = kind.windows_of(ts).any(|w| self.windows.contains_key(&WindowKey::fixed(w)));
                            last = kind.span_of(ts).map(|span| (span, live));
                            live
                        }
                    },
                    (None, None) => false,
                };
                if retained {
                    match runs.last_mut() {
                        Some((_, end)) if *end == i => *end = i + 1,
                        _ => runs.push((i, i + 1)),
                    }
                }
            }
            match runs.as_slice() {
                [] => {}
                [(start, end)] => kept.push(batch.slice(*start, end - start)),
                _ => {
                    let mut mask = arrow::array::BooleanBufferBuilder::new(batch.num_rows());
                    let mut at = 0;
                    for &(start, end) in &runs {
                        mask.append_n(start - at, false);
                        mask.append_n(end - start, true);
                        at = end;
                    }
                    mask.append_n(batch.num_rows() - at, false);
                    let mask = arrow::array::BooleanArray::new(mask.finish(), None);
                    kept.push(filter_record_batch(&batch, &mask)?);
                }
            }
        }
        self.buffer = kept;
        Ok(())
    }
}

/// The columns [`record_id`] reads.
pub(crate) fn record_id_columns(source: schemas::tables::Table) -> &'static [&'static str] {
    match source {
        schemas::tables::Table::OrderEvents => &["event_id"],
        schemas::tables::Table::OrderItems => &["order_id", "line_no"],
        _ => &["order_id"],
    }
}

/// What identifies a source row in `late_events`.
fn record_id(spec: &PipelineSpec, batch: &RecordBatch, row: usize) -> String {
    let text = |name: &str| {
        batch.column_by_name(name).map(|c| c.as_string::<i32>().value(row).to_string()).unwrap_or_default()
    };
    match spec.source {
        schemas::tables::Table::OrderEvents => text("event_id"),
        schemas::tables::Table::OrderItems => {
            let line = batch
                .column_by_name("line_no")
                .map(|c| c.as_primitive::<arrow::datatypes::Int32Type>().value(row))
                .unwrap_or_default();
            format!("{}:{line}", text("order_id"))
        }
        _ => text("order_id"),
    }
}

/// `batch`'s `columns`, in that order (no copy).
pub fn project(batch: &RecordBatch, columns: &[String]) -> Result<RecordBatch, AnalyticsError> {
    let schema = batch.schema();
    let indices = columns
        .iter()
        .map(|c| {
            schema.index_of(c).map_err(|_| AnalyticsError::Config {
                what: "pipeline input",
                message: format!("the source rows have no column {c}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(batch.project(&indices)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::manifest::parse_pipeline;

    pub(crate) fn spec(window: &str, lateness: &str) -> Arc<PipelineSpec> {
        let manifest = format!(
            "source = \"orders\"\n[window]\n{window}\n[watermark]\nout_of_order = \"0s\"\nallowed_lateness = \"{lateness}\"\n"
        );
        Arc::new(parse_pipeline("t", &manifest, "SELECT 1").unwrap())
    }

    fn batch(rows: &[(i64, &str)], first_seq: i64) -> RecordBatch {
        let orders: Vec<(u64, schemas::Order)> = rows
            .iter()
            .enumerate()
            .map(|(i, (ms, customer))| {
                let mut o = crate::rows::tests::order(customer, &[("p", 1, 100)], "USD");
                o.placed_at = chrono::DateTime::from_timestamp_millis(*ms).unwrap();
                ((first_seq + i as i64) as u64, o)
            })
            .collect();
        crate::rows::orders_batch(&orders).unwrap()
    }

    const MIN: i64 = 60_000;

    #[test]
    fn a_window_is_emitted_once_on_close_then_restated_by_a_late_row() {
        let mut op = Operator::new(spec("kind = \"tumbling\"\nsize = \"1m\"", "2m"));
        let mut late = Vec::new();
        op.push(&batch(&[(10, "a"), (30_000, "b"), (MIN + 5, "c")], 1), &mut late).unwrap();
        let emitted = op.take_emissions(3);
        assert_eq!(emitted.len(), 1);
        assert_eq!((emitted[0].window.start_ms, emitted[0].version, emitted[0].upto_seq), (0, 1, 3));
        assert!(emitted[0].is_final);
        op.push(&batch(&[(20_000, "late"), (2 * MIN + 10, "d")], 4), &mut late).unwrap();
        let emitted = op.take_emissions(5);
        let first: Vec<_> = emitted.iter().filter(|e| e.window.start_ms == 0).collect();
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].version, first[0].late_count), (2, 1));
        // Beyond the lateness: late_events, not a restatement.
        op.push(&batch(&[(10 * MIN, "e"), (5_000, "too late")], 6), &mut late).unwrap();
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].stream_seq, 7);
        assert!(op.take_emissions(7).iter().all(|e| e.window.start_ms != 0));
        op.expire().unwrap();
        assert!(op.windows.keys().all(|k| k.end_ms + 2 * MIN > 10 * MIN));
    }

    #[test]
    fn window_row_counts_are_exact_across_runs_and_batches() {
        // Rows in runs of one window set, broken by a late row and by
        // batch ends: each window's count is still every row it got.
        let mut op = Operator::new(spec("kind = \"hopping\"\nsize = \"2m\"\nslide = \"1m\"", "5m"));
        let times = [10, 20, 30, MIN + 1, MIN + 2, 40, MIN + 3, 3 * MIN, 3 * MIN + 1];
        let rows: Vec<(i64, &str)> = times.iter().map(|t| (*t, "c")).collect();
        op.push(&batch(&rows[..5], 1), &mut Vec::new()).unwrap();
        op.push(&batch(&rows[5..], 6), &mut Vec::new()).unwrap();
        let count = |start: i64| op.windows.iter().find(|(k, _)| k.start_ms == start).map(|(_, s)| s.rows);
        let expected = |start: i64| times.iter().filter(|t| **t >= start && **t < start + 2 * MIN).count() as u64;
        for start in [-MIN, 0, MIN, 2 * MIN, 3 * MIN] {
            assert_eq!(count(start), Some(expected(start)), "window at {start}");
        }
    }

    #[test]
    fn sessions_close_after_the_gap_per_key() {
        let mut op = Operator::new(spec("kind = \"session\"\ngap = \"30m\"\nkey = \"customer_id\"", "0s"));
        let mut late = Vec::new();
        op.push(&batch(&[(0, "a"), (10 * MIN, "a"), (5 * MIN, "b"), (100 * MIN, "c")], 1), &mut late).unwrap();
        let mut emitted = op.take_emissions(4);
        emitted.sort_by(|x, y| x.window.cmp(&y.window));
        let bounds: Vec<(&str, i64, i64)> =
            emitted.iter().map(|e| (e.window.key.as_str(), e.window.start_ms, e.window.end_ms)).collect();
        assert_eq!(bounds, vec![("a", 0, 40 * MIN), ("b", 5 * MIN, 35 * MIN)]);
        op.expire().unwrap();
        assert_eq!(op.buffer.iter().map(RecordBatch::num_rows).sum::<usize>(), 1, "only c's row is still needed");
    }

    #[test]
    fn state_round_trips_through_a_restart() {
        let s = spec("kind = \"hopping\"\nsize = \"1h\"\nslide = \"5m\"", "10m");
        let mut op = Operator::new(Arc::clone(&s));
        op.push(&batch(&[(0, "a"), (7 * MIN, "b")], 1), &mut Vec::new()).unwrap();
        let restored = Operator::restore(s, op.state(), op.buffer.clone(), op.partials.clone());
        assert_eq!(restored.open_windows(), op.open_windows());
        assert_eq!(restored.watermark_ms(), op.watermark_ms());
        // A snapshot of whole rows is cut down to the kept columns on restore.
        let kept = ["placed_at".to_string(), "stream_seq".to_string()];
        let restored = restored.keep_columns(&kept).unwrap();
        assert!(restored.buffer.iter().all(|b| b.schema().fields().len() == 2));
        assert!(restored.keep_columns(&["no_such_column".to_string()]).is_err());
    }
}
