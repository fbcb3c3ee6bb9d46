//! The redis probe and checklist runner.

use crate::model::{Finding, Severity};
use crate::options::Options;
use crate::probe::Recorder;
use crate::target::Target;

pub async fn run(_target: &Target, _opts: &Options, rec: &mut Recorder) {
    rec.push(Finding::new(
        "probe.tcp",
        Severity::Critical,
        "engine not supported yet",
    ));
}
