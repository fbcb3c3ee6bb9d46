//! The JSON report: the [`Report`] serialized as is; the schema is versioned by
//! `schema_version` and documented in docs/doctor.md.

use crate::model::Report;

pub fn render(report: &Report) -> Result<String, serde_json::Error> {
    let mut s = serde_json::to_string_pretty(report)?;
    s.push('\n');
    Ok(s)
}
