//! Event-time windows and watermarks, the arithmetic under every windowed
//! pipeline: which windows an event falls in (tumbling, hopping), how
//! session windows merge per key, and whether an event is on time, late
//! but within the allowed lateness (its window is restated), or too late
//! (it goes to `late_events`, counted, never silently dropped).
//!
//! Times are milliseconds since the Unix epoch; windows are half-open
//! `[start, end)` and aligned to the epoch, so every job and every replay
//! cuts the same windows.

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Window {
    pub fn contains(&self, ts_ms: i64) -> bool {
        self.start_ms <= ts_ms && ts_ms < self.end_ms
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WindowKind {
    /// Fixed, non-overlapping windows of `size_ms`.
    Tumbling { size_ms: i64 },
    /// Windows of `size_ms` starting every `slide_ms` (overlapping when slide < size).
    Hopping { size_ms: i64, slide_ms: i64 },
    /// Per key: events closer than `gap_ms` belong to one session.
    Session { gap_ms: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WindowError {
    #[error("window size must be positive")]
    NonPositiveSize,
    #[error("a hopping window's slide must be positive and divide its size")]
    BadSlide,
}

impl WindowKind {
    pub fn validate(&self) -> Result<(), WindowError> {
        match *self {
            WindowKind::Tumbling { size_ms } | WindowKind::Session { gap_ms: size_ms } if size_ms <= 0 => {
                Err(WindowError::NonPositiveSize)
            }
            WindowKind::Hopping { size_ms, .. } if size_ms <= 0 => Err(WindowError::NonPositiveSize),
            WindowKind::Hopping { size_ms, slide_ms } if slide_ms <= 0 || size_ms % slide_ms != 0 => {
                Err(WindowError::BadSlide)
            }
            _ => Ok(()),
        }
    }

    /// The fixed windows containing `ts_ms`, earliest first. Session windows
    /// depend on neighbouring events: use [`Sessions`].
    pub fn assign(&self, ts_ms: i64) -> Vec<Window> {
        self.windows_of(ts_ms).collect()
    }

    /// The event times that fall in exactly the same fixed windows as
    /// `ts_ms`: its slide, `[start, start + slide)` (its window, when
    /// tumbling), as a hopping size is a multiple of its slide. A run of
    /// rows in time order asks [`WindowKind::windows_of`] once per span.
    pub fn span_of(&self, ts_ms: i64) -> Option<Window> {
        let slide_ms = match *self {
            WindowKind::Tumbling { size_ms } => size_ms,
            WindowKind::Hopping { slide_ms, .. } => slide_ms,
            WindowKind::Session { .. } => return None,
        };
        let start_ms = ts_ms.div_euclid(slide_ms) * slide_ms;
        Some(Window { start_ms, end_ms: start_ms + slide_ms })
    }

    /// [`WindowKind::assign`] without allocating: this runs per row.
    pub fn windows_of(&self, ts_ms: i64) -> impl Iterator<Item = Window> + use<> {
        let (size_ms, slide_ms, count) = match *self {
            WindowKind::Tumbling { size_ms } => (size_ms, size_ms, 1),
            WindowKind::Hopping { size_ms, slide_ms } => (size_ms, slide_ms, size_ms / slide_ms),
            WindowKind::Session { .. } => (1, 1, 0),
        };
        let last_start = ts_ms.div_euclid(slide_ms) * slide_ms;
        (0..count)
            .rev()
            .map(move |k| last_start - k * slide_ms)
            .map(move |start| Window { start_ms: start, end_ms: start + size_ms })
            .filter(move |w| w.contains(ts_ms))
    }
}

/// One key's session windows: each event extends or merges sessions so that
/// no two sessions are closer than the gap.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions {
    /// Sorted, disjoint, separated by at least the gap.
    pub windows: Vec<Window>,
}

impl Sessions {
    /// Adds an event; returns the session it now belongs to.
    pub fn add(&mut self, ts_ms: i64, gap_ms: i64) -> Window {
        let mut merged = Window { start_ms: ts_ms, end_ms: ts_ms + gap_ms };
        // Every session that touches [ts - gap, ts + gap) joins this one.
        self.windows.retain(|w| {
            let touches = w.start_ms < merged.end_ms && merged.start_ms < w.end_ms;
            if touches {
                merged.start_ms = merged.start_ms.min(w.start_ms);
                merged.end_ms = merged.end_ms.max(w.end_ms);
            }
            !touches
        });
        let at = self.windows.partition_point(|w| w.start_ms < merged.start_ms);
        self.windows.insert(at, merged);
        merged
    }
}

/// Where an event stands against the watermark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Its window is still open.
    OnTime,
    /// Its window was emitted but is within the allowed lateness: restate it.
    Late,
    /// Beyond the allowed lateness: to `late_events`, counted.
    TooLate,
}

/// Event-time progress: the largest event time seen, less how much
/// out-of-orderness is expected. It also advances with the clock when the
/// stream is idle, so quiet periods still close windows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    max_event_ms: Option<i64>,
    /// How far event time may run behind the maximum and still be on time.
    pub out_of_order_ms: i64,
    /// How long after its window closes an event may still restate it.
    pub allowed_lateness_ms: i64,
    idle_floor_ms: Option<i64>,
}

impl Watermark {
    pub fn new(out_of_order_ms: i64, allowed_lateness_ms: i64) -> Self {
        Watermark { out_of_order_ms, allowed_lateness_ms, ..Watermark::default() }
    }

    pub fn observe(&mut self, event_ms: i64) {
        self.max_event_ms = Some(self.max_event_ms.map_or(event_ms, |m| m.max(event_ms)));
    }

    /// After `idle_for_ms` of processing time with no events, event time is
    /// assumed to have moved on with the clock past `idle_after_ms`. It moves
    /// from the last event seen, not to the wall clock, so a replay of last
    /// year's orders that pauses does not make the rest of the year late.
    pub fn on_idle(&mut self, idle_for_ms: i64, idle_after_ms: i64) {
        let Some(max_event_ms) = self.max_event_ms else { return };
        if idle_for_ms <= idle_after_ms {
            return;
        }
        let floor = max_event_ms - self.out_of_order_ms + (idle_for_ms - idle_after_ms);
        self.idle_floor_ms = Some(self.idle_floor_ms.map_or(floor, |f| f.max(floor)));
    }

    /// Windows ending at or before this are closed. Never goes back.
    pub fn current(&self) -> Option<i64> {
        let from_events = self.max_event_ms.map(|m| m - self.out_of_order_ms);
        match (from_events, self.idle_floor_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn is_closed(&self, window: &Window) -> bool {
        self.current().is_some_and(|wm| window.end_ms <= wm)
    }

    /// How an event for `window` arrives, given the watermark now.
    pub fn classify(&self, window: &Window) -> Arrival {
        match self.current() {
            Some(wm) if window.end_ms + self.allowed_lateness_ms <= wm => Arrival::TooLate,
            Some(wm) if window.end_ms <= wm => Arrival::Late,
            _ => Arrival::OnTime,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: i64 = 60_000;

    #[test]
    fn tumbling_windows_align_to_the_epoch_even_before_it() {
        let w = WindowKind::Tumbling { size_ms: MIN };
        assert_eq!(w.assign(90_000), vec![Window { start_ms: 60_000, end_ms: 120_000 }]);
        assert_eq!(w.assign(-1), vec![Window { start_ms: -60_000, end_ms: 0 }]);
        assert_eq!(w.assign(120_000), vec![Window { start_ms: 120_000, end_ms: 180_000 }]);
    }

    #[test]
    fn an_hour_every_five_minutes_gives_twelve_windows() {
        let w = WindowKind::Hopping { size_ms: 60 * MIN, slide_ms: 5 * MIN };
        let windows = w.assign(61 * MIN);
        assert_eq!(windows.len(), 12);
        assert_eq!(windows[0].start_ms, 5 * MIN);
        assert_eq!(windows[11].start_ms, 60 * MIN);
        assert!(WindowKind::Hopping { size_ms: 60 * MIN, slide_ms: 7 * MIN }.validate().is_err());
        assert!(WindowKind::Tumbling { size_ms: 0 }.validate().is_err());
    }

    #[test]
    fn sessions_merge_when_an_event_bridges_them() {
        let mut s = Sessions::default();
        let gap = 30 * MIN;
        s.add(0, gap);
        s.add(50 * MIN, gap);
        assert_eq!(s.windows.len(), 2, "50 minutes apart: two sessions");
        let bridged = s.add(25 * MIN, gap);
        assert_eq!(s.windows, vec![bridged]);
        assert_eq!(bridged, Window { start_ms: 0, end_ms: 80 * MIN });
        // Exactly a gap of silence splits sessions.
        assert_eq!(s.add(110 * MIN, gap), Window { start_ms: 110 * MIN, end_ms: 140 * MIN });
        assert_eq!(s.windows.len(), 2);
    }

    #[test]
    fn lateness_is_on_time_late_or_too_late() {
        let mut wm = Watermark::new(5_000, MIN);
        let window = Window { start_ms: 0, end_ms: MIN };
        wm.observe(30_000);
        assert_eq!(wm.classify(&window), Arrival::OnTime);
        wm.observe(MIN + 5_000);
        assert!(wm.is_closed(&window));
        assert_eq!(wm.classify(&window), Arrival::Late);
        wm.observe(2 * MIN + 5_000);
        assert_eq!(wm.classify(&window), Arrival::TooLate);
    }

    #[test]
    fn an_idle_stream_still_closes_windows() {
        let mut wm = Watermark::new(1_000, 0);
        wm.observe(10_000);
        let window = Window { start_ms: 0, end_ms: MIN };
        assert!(!wm.is_closed(&window));
        wm.on_idle(4_000, 5_000);
        assert!(!wm.is_closed(&window), "not idle long enough");
        wm.on_idle(2 * MIN, 5_000);
        assert!(wm.is_closed(&window));
        wm.observe(20_000);
        assert!(wm.is_closed(&window), "the watermark never goes back");
    }

    proptest! {
        #[test]
        fn every_instant_is_in_exactly_one_tumbling_window(ts in -10_i64.pow(12)..10_i64.pow(12), size in 1_i64..10_i64.pow(8)) {
            let windows = WindowKind::Tumbling { size_ms: size }.assign(ts);
            prop_assert_eq!(windows.len(), 1);
            prop_assert!(windows[0].contains(ts));
            prop_assert_eq!(windows[0].start_ms.rem_euclid(size), 0);
        }

        #[test]
        fn hopping_windows_are_exactly_those_containing_the_instant(ts in -10_i64.pow(10)..10_i64.pow(10), slide in 1_i64..10_000, k in 1_i64..20) {
            let kind = WindowKind::Hopping { size_ms: slide * k, slide_ms: slide };
            let windows = kind.assign(ts);
            prop_assert_eq!(windows.len() as i64, k);
            for w in &windows {
                prop_assert!(w.contains(ts));
                prop_assert_eq!(w.start_ms.rem_euclid(slide), 0);
            }
            // No containing window is missed: the next one after the last starts after ts.
            prop_assert!(windows.last().is_some_and(|w| w.start_ms + slide > ts));
        }

        #[test]
        fn every_instant_of_a_span_has_the_same_windows(ts in -10_i64.pow(10)..10_i64.pow(10), slide in 1_i64..10_000, k in 1_i64..20, at in 0.0..1.0_f64) {
            for kind in [WindowKind::Tumbling { size_ms: slide }, WindowKind::Hopping { size_ms: slide * k, slide_ms: slide }] {
                let span = kind.span_of(ts);
                prop_assert!(span.is_some_and(|s| s.contains(ts)));
                let Some(span) = span else { continue };
                let other = span.start_ms + ((span.end_ms - span.start_ms - 1) as f64 * at) as i64;
                prop_assert_eq!(kind.assign(other), kind.assign(ts));
                // Just outside, the windows differ.
                prop_assert_ne!(kind.assign(span.end_ms), kind.assign(ts));
                prop_assert_ne!(kind.assign(span.start_ms - 1), kind.assign(ts));
            }
        }

        #[test]
        fn sessions_stay_sorted_disjoint_and_gap_separated(events in prop::collection::vec(0_i64..1_000_000, 1..60), gap in 1_i64..50_000) {
            let mut s = Sessions::default();
            for ts in &events {
                let w = s.add(*ts, gap);
                prop_assert!(w.contains(*ts));
            }
            for pair in s.windows.windows(2) {
                prop_assert!(pair[0].end_ms <= pair[1].start_ms, "{:?}", s.windows);
            }
            for ts in &events {
                prop_assert_eq!(s.windows.iter().filter(|w| w.contains(*ts)).count(), 1);
            }
            // Order of arrival does not matter.
            let mut reversed = Sessions::default();
            for ts in events.iter().rev() {
                reversed.add(*ts, gap);
            }
            prop_assert_eq!(reversed, s);
        }

        #[test]
        fn the_watermark_never_goes_back(events in prop::collection::vec(0_i64..1_000_000, 1..100)) {
            let mut wm = Watermark::new(1_000, 5_000);
            let mut last = None;
            for ts in events {
                wm.observe(ts);
                let now = wm.current();
                prop_assert!(now >= last);
                last = now;
            }
        }
    }
}
