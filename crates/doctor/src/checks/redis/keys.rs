//! Big keys by memory, from a bounded SCAN with a pause between batches so a large
//! keyspace costs the server a few milliseconds at a time, never a long block.

use std::time::Duration;

use super::CheckResult;
use crate::model::{Finding, Severity};
use crate::probe::redis::resp::{RedisConn, Reply};
use crate::thresholds::Thresholds;

const BATCH: usize = 100;
const PAUSE: Duration = Duration::from_millis(10);

pub async fn big_keys(c: &mut RedisConn, th: &Thresholds) -> CheckResult {
    let max_keys = th.get("redis.big_keys.sample_keys").max(1.0) as usize;
    let warn_bytes = th.get("redis.big_keys.warn_mb") * 1_048_576.0;
    let mut cursor = "0".to_string();
    let mut sampled = 0usize;
    let mut sizes: Vec<(f64, String)> = Vec::new();
    loop {
        let r = c
            .cmd(&["SCAN", &cursor, "COUNT", &BATCH.to_string()])
            .await?;
        let parts = r.items();
        cursor = parts.first().map(Reply::text).unwrap_or_else(|| "0".into());
        let keys: Vec<String> = parts
            .get(1)
            .map(|k| k.items().iter().map(Reply::text).collect())
            .unwrap_or_default();
        let keys: Vec<String> = keys.into_iter().take(max_keys - sampled).collect();
        if !keys.is_empty() {
            let cmds: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        "MEMORY".into(),
                        "USAGE".into(),
                        k.clone(),
                        "SAMPLES".into(),
                        "5".into(),
                    ]
                })
                .collect();
            let replies = c.pipeline(&cmds).await?;
            for (k, r) in keys.iter().zip(replies) {
                if let Some(b) = r.int() {
                    sizes.push((b as f64, k.clone()));
                }
            }
            sampled += keys.len();
        }
        if cursor == "0" || sampled >= max_keys {
            break;
        }
        tokio::time::sleep(PAUSE).await;
    }
    sizes.sort_by(|a, b| b.0.total_cmp(&a.0));
    let big: Vec<&(f64, String)> = sizes.iter().filter(|(b, _)| *b >= warn_bytes).collect();
    let largest = sizes.first().map(|s| s.0).unwrap_or(0.0);
    let sev = if big.is_empty() {
        Severity::Ok
    } else {
        Severity::Warning
    };
    let title = if big.is_empty() {
        format!(
            "{sampled} key(s) sampled, largest {:.1} KB",
            largest / 1024.0
        )
    } else {
        format!(
            "{} of {sampled} sampled key(s) use more than {:.0} MB each",
            big.len(),
            warn_bytes / 1_048_576.0
        )
    };
    Ok(vec![Finding::new("redis.big_keys", sev, title)
        .value("sampled_keys", sampled)
        .value("largest_bytes", largest)
        .value("complete_scan", cursor == "0")
        .query("SCAN cursor COUNT 100 (bounded, paused) + MEMORY USAGE key SAMPLES 5")
        .items(
            sizes
                .iter()
                .take(10)
                .map(|(b, k)| format!("{k}: {:.1} KB", b / 1024.0)),
        )])
}
