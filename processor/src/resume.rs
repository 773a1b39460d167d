//! What the engine already published, so a resumed engine never publishes
//! it twice, however long it was down.
//!
//! The engine is deterministic: after a crash it re-applies the inputs since
//! its last snapshot and recomputes the same events with the same ids.
//! JetStream drops a repeated `Nats-Msg-Id` only inside its dedup window
//! (two minutes by default); an engine down longer would publish every
//! event after the snapshot a second time. So each snapshot records how far
//! every output stream had come ([`OutputPositions`]), and a resuming leader
//! reads the message ids published after those positions (headers only) and
//! skips them while it re-applies ([`AlreadyPublished`]).

use std::collections::HashSet;

use async_nats::jetstream::{self, consumer};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use broker::{DLQ_STREAM, ORDER_EVENTS_STREAM, STOCK_EVENTS_STREAM};

use crate::ProcessorError;

/// The last sequence of each output stream that the engine's published
/// effects had reached when a snapshot was taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputPositions {
    pub order_events: u64,
    pub stock_events: u64,
    pub dead_letters: u64,
}

impl OutputPositions {
    /// Raises the position of `stream` to `seq` (a PubAck's sequence).
    pub fn saw(&mut self, stream: &str, seq: u64) {
        let slot = match stream {
            ORDER_EVENTS_STREAM => &mut self.order_events,
            STOCK_EVENTS_STREAM => &mut self.stock_events,
            DLQ_STREAM => &mut self.dead_letters,
            _ => return,
        };
        *slot = (*slot).max(seq);
    }

    fn of(&self, stream: &str) -> u64 {
        match stream {
            ORDER_EVENTS_STREAM => self.order_events,
            STOCK_EVENTS_STREAM => self.stock_events,
            _ => self.dead_letters,
        }
    }
}

/// Where to start reading an output stream for ids published after a
/// snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// The snapshot recorded the output positions.
    Positions(OutputPositions),
    /// A snapshot written before positions were recorded: everything
    /// published from shortly before it was stored.
    Time(DateTime<Utc>),
    /// No snapshot: the engine starts from the first input, and every
    /// message of the outputs may be one of its own.
    Beginning,
}

/// The runner's record of its outputs: the ids already published that the
/// re-applied inputs will produce again, and how far each output stream has
/// come, for the next snapshot.
#[derive(Debug, Default)]
pub struct Outputs {
    ids: HashSet<String>,
    /// Once the engine has applied this ORDERS sequence, no re-applied input
    /// is left to produce one of `ids`.
    until_input: u64,
    /// The ids were read after these positions...
    from: OutputPositions,
    /// ...up to these, the streams' ends at resume.
    at_resume: OutputPositions,
    /// The highest sequence each stream acknowledged to this leader.
    acked: OutputPositions,
    /// Effects skipped because they were already published.
    pub skipped: u64,
}

impl Outputs {
    /// Reads the ids published after `since` in every output stream.
    /// `orders_last_seq` is the last ORDERS sequence now: every input that
    /// could have produced one of them lies at or below it.
    pub async fn resume(
        js: &jetstream::Context,
        since: Since,
        orders_last_seq: u64,
    ) -> Result<Outputs, ProcessorError> {
        let mut outputs = Outputs { until_input: orders_last_seq, ..Outputs::default() };
        for stream in [ORDER_EVENTS_STREAM, STOCK_EVENTS_STREAM, DLQ_STREAM] {
            let (from, last) = read_ids(js, stream, since, &mut outputs.ids).await?;
            outputs.from.saw(stream, from);
            outputs.at_resume.saw(stream, last);
        }
        Ok(outputs)
    }

    /// Ids still expected from re-applied inputs.
    pub fn pending(&self) -> usize {
        self.ids.len()
    }

    /// True when `id` was published already (each id matches once).
    pub fn already_published(&mut self, id: &str) -> bool {
        let found = !self.ids.is_empty() && self.ids.remove(id);
        self.skipped += u64::from(found);
        found
    }

    /// A PubAck from `stream` at `seq`.
    pub fn acked(&mut self, stream: &str, seq: u64) {
        self.acked.saw(stream, seq);
    }

    /// The positions a snapshot of the engine at `last_seq` records: every
    /// message at or below them was produced by inputs at or below
    /// `last_seq`. Until the engine is past every input that may repeat a
    /// published id, that is only what the ids were read after (a resume
    /// from the snapshot then reads them again).
    pub fn positions(&mut self, last_seq: u64) -> OutputPositions {
        if last_seq < self.until_input && !self.ids.is_empty() {
            return self.from;
        }
        self.ids = HashSet::new();
        let mut positions = self.from;
        for (stream, seq) in [self.at_resume, self.acked].iter().flat_map(|p| p.each()) {
            positions.saw(stream, seq);
        }
        positions
    }
}

impl OutputPositions {
    fn each(&self) -> [(&'static str, u64); 3] {
        [
            (ORDER_EVENTS_STREAM, self.order_events),
            (STOCK_EVENTS_STREAM, self.stock_events),
            (DLQ_STREAM, self.dead_letters),
        ]
    }
}

fn nats(what: &'static str) -> impl FnOnce(String) -> ProcessorError {
    move |message| ProcessorError::Nats { what, message }
}

/// Adds the `Nats-Msg-Id` of every message of `stream` after `since`, up to
/// its last message now, reading headers only. Returns the position read
/// after and the stream's last sequence.
async fn read_ids(
    js: &jetstream::Context,
    stream: &str,
    since: Since,
    ids: &mut HashSet<String>,
) -> Result<(u64, u64), ProcessorError> {
    let failed = |e: &dyn std::fmt::Display| nats("read an output stream's ids")(e.to_string());
    let mut handle = js.get_stream(stream).await.map_err(|e| failed(&e))?;
    let info = handle.info().await.map_err(|e| failed(&e))?;
    let last = info.state.last_sequence;
    let deliver_policy = match since {
        Since::Positions(positions) if positions.of(stream) >= last => return Ok((positions.of(stream), last)),
        Since::Positions(positions) => {
            consumer::DeliverPolicy::ByStartSequence { start_sequence: positions.of(stream) + 1 }
        }
        Since::Time(at) => consumer::DeliverPolicy::ByStartTime { start_time: at },
        Since::Beginning => consumer::DeliverPolicy::All,
    };
    if info.state.messages == 0 {
        return Ok((last, last));
    }
    let consumer = handle
        .create_consumer(consumer::pull::OrderedConfig { deliver_policy, headers_only: true, ..Default::default() })
        .await
        .map_err(|e| failed(&e))?;
    if consumer.cached_info().num_pending == 0 {
        return Ok((last, last));
    }
    let mut messages = consumer.messages().await.map_err(|e| failed(&e))?;
    let mut from = None;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| failed(&e))?;
        let info = message.info().map_err(|e| failed(&e))?;
        let (seq, pending) = (info.stream_sequence, info.pending);
        from.get_or_insert(seq.saturating_sub(1));
        if let Some(id) = message.headers.as_ref().and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID)) {
            ids.insert(id.to_string());
        }
        if seq >= last || pending == 0 {
            break;
        }
    }
    Ok((from.unwrap_or(last), last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_only_grow_and_ignore_other_streams() {
        let mut p = OutputPositions::default();
        p.saw(ORDER_EVENTS_STREAM, 7);
        p.saw(ORDER_EVENTS_STREAM, 3);
        p.saw(STOCK_EVENTS_STREAM, 2);
        p.saw(DLQ_STREAM, 1);
        p.saw("ORDERS", 99);
        assert_eq!(p, OutputPositions { order_events: 7, stock_events: 2, dead_letters: 1 });
    }

    #[test]
    fn each_id_is_matched_once_and_positions_wait_until_outlived() {
        let from = OutputPositions { order_events: 10, stock_events: 1, dead_letters: 0 };
        let mut outputs = Outputs {
            ids: ["a:reserved".to_string(), "b:reserved".to_string()].into(),
            until_input: 100,
            from,
            at_resume: OutputPositions { order_events: 12, stock_events: 3, dead_letters: 0 },
            ..Outputs::default()
        };
        assert!(outputs.already_published("a:reserved"));
        assert!(!outputs.already_published("a:reserved"), "matched once");
        assert!(!outputs.already_published("c:reserved"));
        assert_eq!(outputs.skipped, 1);
        outputs.acked(ORDER_EVENTS_STREAM, 15);
        assert_eq!(outputs.positions(99), from, "b may still come again: a resume must read after `from`");
        assert_eq!(
            outputs.positions(100),
            OutputPositions { order_events: 15, stock_events: 3, dead_letters: 0 },
            "past every input that could repeat an id"
        );
        assert_eq!(outputs.pending(), 0);
        assert!(!outputs.already_published("b:reserved"), "forgotten once outlived");
    }
}
