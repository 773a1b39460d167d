//! A pipeline is two files in a directory (the shipped set:
//! `analytics/pipelines/`): `NAME.sql`, the query over the rows of one
//! window, and `NAME.toml`, the manifest (source table, window
//! kind and size, slide, gap, watermark, lateness, output table). They are
//! loaded and checked (the SQL is planned) at start-up, so a mistake stops
//! the job with the file and the reason instead of surfacing mid-stream.
//!
//! ```toml
//! source = "order_items"        # orders | order_items | order_events
//! output = "revenue_by_category_1m"   # default: the file name
//! early_results = false         # emit provisional rows each micro-batch
//! seed_history = false          # `orderstream seed` writes this output for its
//!                               # days too (tumbling, 1h to 1d, dividing a day)
//! serves = "revenue_by_category" # the dashboard figure its windows answer
//!                               # (schemas::rollups; tumbling, same source)
//! [window]
//! kind = "tumbling"             # tumbling | hopping | session | cumulative
//! size = "1m"                   # slide = "5m" (hopping), gap + key (session),
//!                               # step + accumulate (cumulative)
//! [watermark]
//! out_of_order = "5s"           # watermark = max event time − this
//! allowed_lateness = "10m"      # later rows restate; beyond: late_events
//! idle_timeout = "10s"          # no input this long: event time moves with the clock
//! ```

use std::path::Path;

use schemas::rollups::Rollup;
use schemas::tables::Table;
use serde::Deserialize;

use crate::AnalyticsError;
use crate::window::WindowKind;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    source: String,
    output: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    early_results: bool,
    #[serde(default)]
    seed_history: bool,
    serves: Option<String>,
    window: WindowSection,
    #[serde(default)]
    watermark: WatermarkSection,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowSection {
    kind: String,
    size: Option<String>,
    slide: Option<String>,
    gap: Option<String>,
    key: Option<String>,
    step: Option<String>,
    #[serde(default)]
    accumulate: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WatermarkSection {
    #[serde(default = "default_out_of_order")]
    out_of_order: String,
    #[serde(default = "default_lateness")]
    allowed_lateness: String,
    #[serde(default = "default_idle")]
    idle_timeout: String,
}

fn default_out_of_order() -> String {
    "5s".into()
}
fn default_lateness() -> String {
    "10m".into()
}
fn default_idle() -> String {
    "10s".into()
}

impl Default for WatermarkSection {
    fn default() -> Self {
        WatermarkSection {
            out_of_order: default_out_of_order(),
            allowed_lateness: default_lateness(),
            idle_timeout: default_idle(),
        }
    }
}

/// How rows are grouped into windows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Windowing {
    /// Tumbling or hopping, cut from event time alone.
    Fixed(WindowKind),
    /// Per `key` (a source column), closed after `gap_ms` without events.
    Session { gap_ms: i64, key: String },
    /// Windows `[day start, day start + k·step)`: the running total of the
    /// `accumulate` columns since the start of each `size_ms` period.
    Cumulative { size_ms: i64, step_ms: i64, accumulate: Vec<String> },
}

impl Windowing {
    /// Whether a UTC day is whole windows: tumbling, an hour to a day, a
    /// divisor of a day (what `seed_history` needs).
    pub fn tiles_a_day(&self) -> bool {
        const HOUR_MS: i64 = 3_600_000;
        matches!(self, Windowing::Fixed(WindowKind::Tumbling { size_ms })
            if *size_ms >= HOUR_MS && (24 * HOUR_MS) % size_ms == 0)
    }
}

#[derive(Clone, Debug)]
pub struct PipelineSpec {
    pub name: String,
    pub description: String,
    pub source: Table,
    pub output: String,
    pub sql: String,
    pub windowing: Windowing,
    pub out_of_order_ms: i64,
    pub allowed_lateness_ms: i64,
    pub idle_timeout_ms: i64,
    pub early_results: bool,
    /// The seed writes this pipeline's rows for the days it generates
    /// (see [`crate::rollup`]).
    pub seed_history: bool,
    /// The dashboard figure this pipeline's closed windows answer (the
    /// dashboard finds its table by this, never by name).
    pub serves: Option<Rollup>,
}

impl PipelineSpec {
    pub fn time_column(&self) -> &'static str {
        self.source.time_column()
    }

    /// The window rows are cut into before the SQL runs (for a cumulative
    /// pipeline, the step).
    pub fn evaluation_window(&self) -> Option<WindowKind> {
        match &self.windowing {
            Windowing::Fixed(kind) => Some(*kind),
            Windowing::Cumulative { step_ms, .. } => Some(WindowKind::Tumbling { size_ms: *step_ms }),
            Windowing::Session { .. } => None,
        }
    }

    pub fn session_key(&self) -> Option<&str> {
        match &self.windowing {
            Windowing::Session { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// `500ms`, `10s`, `5m`, `1h`, `1d` → milliseconds.
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().ok()?;
    let unit_ms = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms)
}

fn source_table(name: &str) -> Option<Table> {
    [Table::Orders, Table::OrderItems, Table::OrderEvents].into_iter().find(|t| t.name() == name)
}

/// Parses one manifest and its SQL. `name` is the file stem.
pub fn parse_pipeline(name: &str, manifest: &str, sql: &str) -> Result<PipelineSpec, AnalyticsError> {
    let fail = |message: String| AnalyticsError::pipeline(name, message);
    let file: ManifestFile = toml::from_str(manifest).map_err(|e| fail(format!("manifest: {e}")))?;
    let source = source_table(&file.source)
        .ok_or_else(|| fail(format!("source {:?} is not one of orders, order_items, order_events", file.source)))?;
    let duration = |field: &str, value: &Option<String>| -> Result<i64, AnalyticsError> {
        let text = value.as_deref().ok_or_else(|| fail(format!("window.{field} is required for this kind")))?;
        match parse_duration_ms(text) {
            Some(ms) if ms > 0 => Ok(ms),
            _ => Err(fail(format!("window.{field} = {text:?} is not a duration like 30s, 5m, 1h, 1d"))),
        }
    };
    let w = &file.window;
    let windowing = match w.kind.as_str() {
        "tumbling" => Windowing::Fixed(WindowKind::Tumbling { size_ms: duration("size", &w.size)? }),
        "hopping" => Windowing::Fixed(WindowKind::Hopping {
            size_ms: duration("size", &w.size)?,
            slide_ms: duration("slide", &w.slide)?,
        }),
        "session" => Windowing::Session {
            gap_ms: duration("gap", &w.gap)?,
            key: w.key.clone().ok_or_else(|| fail("window.key (the session's column) is required".into()))?,
        },
        "cumulative" => {
            let (size_ms, step_ms) = (duration("size", &w.size)?, duration("step", &w.step)?);
            if size_ms % step_ms != 0 {
                return Err(fail("window.step must divide window.size".into()));
            }
            if w.accumulate.is_empty() {
                return Err(fail("window.accumulate must name the additive output columns".into()));
            }
            Windowing::Cumulative { size_ms, step_ms, accumulate: w.accumulate.clone() }
        }
        other => return Err(fail(format!("window.kind {other:?} is not tumbling, hopping, session or cumulative"))),
    };
    if let Windowing::Fixed(kind) = &windowing {
        kind.validate().map_err(|e| fail(e.to_string()))?;
    }
    if let Windowing::Session { key, .. } = &windowing
        && source.schema().field_with_name(key).is_err()
    {
        return Err(fail(format!("window.key {key:?} is not a column of {}", source.name())));
    }
    let wm = &file.watermark;
    let wm_duration = |field: &str, text: &str| {
        parse_duration_ms(text).ok_or_else(|| fail(format!("watermark.{field} = {text:?} is not a duration")))
    };
    let output = file.output.unwrap_or_else(|| name.to_string());
    if output.is_empty() || !output.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(fail(format!("output {output:?} must be lower_snake_case")));
    }
    if Table::ALL.iter().any(|t| t.name() == output) {
        return Err(fail(format!("output {output:?} is a base table's name")));
    }
    let serves = match &file.serves {
        None => None,
        Some(name) => {
            let rollup = Rollup::parse(name).ok_or_else(|| {
                let known: Vec<&str> = Rollup::ALL.iter().map(|r| r.name()).collect();
                fail(format!("serves {name:?} is not one of {}", known.join(", ")))
            })?;
            if rollup.source() != source {
                return Err(fail(format!("serves {rollup}, which is computed from {}", rollup.source().name())));
            }
            if !matches!(windowing, Windowing::Fixed(WindowKind::Tumbling { .. })) {
                return Err(fail(format!("serves {rollup}: the dashboard reads tumbling windows only")));
            }
            Some(rollup)
        }
    };
    if file.seed_history && !windowing.tiles_a_day() {
        return Err(fail(
            "seed_history needs a tumbling window of 1h to 1d that divides a day (the seed writes whole days)".into(),
        ));
    }
    Ok(PipelineSpec {
        name: name.to_string(),
        description: file.description,
        source,
        output,
        sql: sql.trim().trim_end_matches(';').to_string(),
        windowing,
        out_of_order_ms: wm_duration("out_of_order", &wm.out_of_order)?,
        allowed_lateness_ms: wm_duration("allowed_lateness", &wm.allowed_lateness)?,
        idle_timeout_ms: wm_duration("idle_timeout", &wm.idle_timeout)?,
        early_results: file.early_results,
        seed_history: file.seed_history,
        serves,
    })
}

/// Every `*.toml` in `dir` with its `*.sql`, sorted by name. Two pipelines
/// may not write one output table.
pub fn load_pipelines(dir: &Path) -> Result<Vec<PipelineSpec>, AnalyticsError> {
    let config = |message: String| AnalyticsError::Config { what: "pipelines", message };
    let entries = std::fs::read_dir(dir).map_err(|e| config(format!("{}: {e}", dir.display())))?;
    let mut manifests: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    manifests.sort();
    let mut specs: Vec<PipelineSpec> = Vec::new();
    for path in manifests {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        let manifest = std::fs::read_to_string(&path).map_err(|e| config(format!("{}: {e}", path.display())))?;
        let sql_path = path.with_extension("sql");
        let sql = std::fs::read_to_string(&sql_path)
            .map_err(|e| AnalyticsError::pipeline(&name, format!("{}: {e}", sql_path.display())))?;
        let spec = parse_pipeline(&name, &manifest, &sql)?;
        if let Some(other) = specs.iter().find(|s| s.output == spec.output) {
            return Err(AnalyticsError::pipeline(&name, format!("output {} is also {}'s", spec.output, other.name)));
        }
        specs.push(spec);
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration_ms("5m"), Some(300_000));
        assert_eq!(parse_duration_ms("1d"), Some(86_400_000));
        assert_eq!(parse_duration_ms("5"), None);
        assert_eq!(parse_duration_ms("m"), None);
        assert_eq!(parse_duration_ms("3 weeks"), None);
    }

    #[test]
    fn mistakes_name_the_pipeline_and_the_field() {
        let sql = "SELECT window_start, window_end, count(*) AS n FROM input GROUP BY 1, 2";
        let bad = [
            ("source = \"nope\"\n[window]\nkind = \"tumbling\"\nsize = \"1m\"", "source"),
            ("source = \"orders\"\n[window]\nkind = \"tumbling\"", "window.size"),
            ("source = \"orders\"\n[window]\nkind = \"hopping\"\nsize = \"1h\"\nslide = \"7m\"", "slide"),
            ("source = \"orders\"\n[window]\nkind = \"session\"\ngap = \"30m\"\nkey = \"nope\"", "window.key"),
            ("source = \"orders\"\noutput = \"orders\"\n[window]\nkind = \"tumbling\"\nsize = \"1m\"", "base table"),
            ("source = \"orders\"\nsurprise = 1\n[window]\nkind = \"tumbling\"\nsize = \"1m\"", "surprise"),
            ("source = \"orders\"\nseed_history = true\n[window]\nkind = \"tumbling\"\nsize = \"1m\"", "seed_history"),
            ("source = \"order_items\"\nserves = \"revenue\"\n[window]\nkind = \"tumbling\"\nsize = \"1m\"", "serves"),
            (
                "source = \"orders\"\nserves = \"revenue_by_category\"\n[window]\nkind = \"tumbling\"\nsize = \"1m\"",
                "computed from order_items",
            ),
            (
                "source = \"order_items\"\nserves = \"revenue_by_category\"\n[window]\nkind = \"hopping\"\nsize = \"1h\"\nslide = \"5m\"",
                "tumbling windows only",
            ),
        ];
        for (manifest, expected) in bad {
            let error = parse_pipeline("p", manifest, sql).unwrap_err().to_string();
            assert!(error.contains("pipeline p") && error.contains(expected), "{error}");
        }
    }

    #[test]
    fn the_shipped_pipelines_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
        let specs = load_pipelines(&dir).unwrap();
        let kinds: Vec<&Windowing> = specs.iter().map(|s| &s.windowing).collect();
        assert!(kinds.iter().any(|k| matches!(k, Windowing::Session { .. })));
        assert!(kinds.iter().any(|k| matches!(k, Windowing::Cumulative { .. })));
        assert!(kinds.iter().any(|k| matches!(k, Windowing::Fixed(WindowKind::Hopping { .. }))));
        assert!(specs.len() >= 8, "{} pipelines", specs.len());
        // Every figure the dashboard draws from windows has a pipeline.
        for rollup in Rollup::ALL {
            assert!(specs.iter().any(|s| s.serves == Some(rollup)), "nothing serves {rollup}");
        }
    }
}
