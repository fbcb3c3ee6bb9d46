//! The waterfall layout shared by the text and HTML renderers: connection phases
//! placed on one time axis, so the eye goes to the wide (or red) bar.

use crate::model::{Phase, Report};

/// The phases of establishing a connection; later phases (round trips, checks) are
/// summarized separately so they do not squash these bars.
const CONNECT_PHASES: &[&str] = &["dns", "tcp", "greeting", "tls", "auth", "query"];

#[derive(Debug, Clone, PartialEq)]
pub struct Bar<'a> {
    pub phase: &'a Phase,
    /// Start and width as fractions of the axis, 0..=1.
    pub start: f64,
    pub width: f64,
    pub slowest: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Waterfall<'a> {
    pub bars: Vec<Bar<'a>>,
    /// Length of the axis in milliseconds.
    pub total_ms: f64,
}

impl<'a> Waterfall<'a> {
    pub fn of(report: &'a Report) -> Waterfall<'a> {
        let phases: Vec<&Phase> = report
            .phases
            .iter()
            .filter(|p| CONNECT_PHASES.contains(&p.name.as_str()))
            .collect();
        let origin = phases.first().map(|p| p.start_ms).unwrap_or(0.0);
        let end = phases
            .iter()
            .map(|p| p.start_ms + p.duration_ms)
            .fold(origin, f64::max);
        let total_ms = (end - origin).max(0.001);
        let slowest = phases
            .iter()
            .max_by(|a, b| a.duration_ms.total_cmp(&b.duration_ms))
            .map(|p| p.name.clone());
        let bars = phases
            .into_iter()
            .map(|p| Bar {
                phase: p,
                start: ((p.start_ms - origin) / total_ms).clamp(0.0, 1.0),
                width: (p.duration_ms / total_ms).clamp(0.0, 1.0),
                slowest: slowest.as_deref() == Some(p.name.as_str()),
            })
            .collect();
        Waterfall { bars, total_ms }
    }
}
