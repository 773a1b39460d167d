//! The health of a process's long-running parts (the order engine, the
//! analytics job, ...): each reports its state here, and `/readyz` and
//! `/metrics` show it. A part that fails says so at once, with the reason,
//! instead of only in a log line at shutdown.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What a part is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentState {
    /// Working.
    Ok,
    /// Healthy but waiting: another instance holds the lease.
    Standby,
    /// Not working; retrying. The process is not ready.
    Failing,
}

impl ComponentState {
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentState::Ok => "ok",
            ComponentState::Standby => "standby",
            ComponentState::Failing => "failing",
        }
    }

    pub const ALL: [ComponentState; 3] = [ComponentState::Ok, ComponentState::Standby, ComponentState::Failing];
}

#[derive(Clone, Debug, Serialize)]
pub struct Component {
    pub state: ComponentState,
    pub detail: String,
    /// When it entered this state.
    pub since: DateTime<Utc>,
    /// Failures since the process started.
    pub failures: u64,
}

/// The parts of one process, shared by handle.
#[derive(Clone, Debug, Default)]
pub struct Health {
    parts: Arc<Mutex<BTreeMap<String, Component>>>,
}

impl Health {
    pub fn new() -> Health {
        Health::default()
    }

    fn update(&self, name: &str, state: ComponentState, detail: String) {
        let mut parts = self.parts.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Utc::now();
        let failed = u64::from(state == ComponentState::Failing);
        match parts.get_mut(name) {
            Some(part) => {
                if part.state != state {
                    part.since = now;
                    part.failures += failed;
                }
                part.state = state;
                part.detail = detail;
            }
            None => {
                parts.insert(name.to_string(), Component { state, detail, since: now, failures: failed });
            }
        }
    }

    pub fn ok(&self, name: &str, detail: impl Into<String>) {
        self.update(name, ComponentState::Ok, detail.into());
    }

    pub fn standby(&self, name: &str, detail: impl Into<String>) {
        self.update(name, ComponentState::Standby, detail.into());
    }

    pub fn failing(&self, name: &str, detail: impl Into<String>) {
        self.update(name, ComponentState::Failing, detail.into());
    }

    /// [`Health::standby`] taking an owned detail (a `fn` pointer shape).
    pub fn standby_owned(&self, name: &str, detail: String) {
        self.update(name, ComponentState::Standby, detail);
    }

    /// [`Health::failing`] taking an owned detail.
    pub fn failing_owned(&self, name: &str, detail: String) {
        self.update(name, ComponentState::Failing, detail);
    }

    /// Every part, by name.
    pub fn parts(&self) -> BTreeMap<String, Component> {
        self.parts.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The parts that are failing, with why.
    pub fn failing_parts(&self) -> Vec<(String, String)> {
        self.parts()
            .into_iter()
            .filter(|(_, c)| c.state == ComponentState::Failing)
            .map(|(name, c)| (name, c.detail))
            .collect()
    }

    /// OpenMetrics text: `orderstream_component_state{component, state}`
    /// (1 for the current state) and failures per component.
    pub fn encode_metrics(&self) -> String {
        let parts = self.parts();
        let mut out = String::new();
        out.push_str("# HELP orderstream_component_state 1 for the state each long-running part is in.\n");
        out.push_str("# TYPE orderstream_component_state gauge\n");
        for (name, part) in &parts {
            for state in ComponentState::ALL {
                let value = u8::from(part.state == state);
                out.push_str(&format!(
                    "orderstream_component_state{{component=\"{name}\",state=\"{}\"}} {value}\n",
                    state.as_str()
                ));
            }
        }
        out.push_str("# HELP orderstream_component_failures Times each part started failing.\n");
        out.push_str("# TYPE orderstream_component_failures counter\n");
        for (name, part) in &parts {
            out.push_str(&format!("orderstream_component_failures_total{{component=\"{name}\"}} {}\n", part.failures));
        }
        out
    }
}

impl crate::metrics::MetricsSource for Health {
    fn openmetrics(&self) -> String {
        self.encode_metrics()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_once_per_episode_and_shown_in_metrics() {
        let health = Health::new();
        health.ok("engine", "leading");
        assert!(health.failing_parts().is_empty());
        health.failing("engine", "cannot publish");
        health.failing("engine", "cannot publish (again)");
        assert_eq!(health.failing_parts(), vec![("engine".to_string(), "cannot publish (again)".to_string())]);
        health.ok("engine", "leading");
        health.failing("engine", "x");
        assert_eq!(health.parts()["engine"].failures, 2);
        let text = health.encode_metrics();
        assert!(text.contains("orderstream_component_state{component=\"engine\",state=\"failing\"} 1"), "{text}");
        assert!(text.contains("orderstream_component_state{component=\"engine\",state=\"ok\"} 0"), "{text}");
        assert!(text.contains("orderstream_component_failures_total{component=\"engine\"} 2"), "{text}");
    }
}
