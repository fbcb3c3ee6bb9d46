//! Log set-up: `[log] format` and `level`, with `DBWARDEN_LOG` winning over the level when
//! set. The line format itself (stable field names, the client's live fields) lives in
//! `dbwarden_proxy::trace::log`.

use dbwarden_proxy::trace::log::LogLayer;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// Changes the level on reload (unless `DBWARDEN_LOG` fixed it).
pub struct LogLevel {
    handle: reload::Handle<EnvFilter, Registry>,
    from_env: bool,
}

impl LogLevel {
    pub fn set(&self, level: &str) {
        if self.from_env {
            return;
        }
        match EnvFilter::try_new(level) {
            Ok(filter) => {
                if let Err(e) = self.handle.reload(filter) {
                    tracing::warn!(error = %e, "changing the log level failed");
                }
            }
            Err(e) => tracing::warn!(level, error = %e, "log.level not applied"),
        }
    }
}

/// Logs to stderr, one line per event.
pub fn init(json: bool, level: &str) -> LogLevel {
    let env = std::env::var("DBWARDEN_LOG").ok().filter(|v| !v.is_empty());
    let spec = env.as_deref().unwrap_or(level);
    let (filter, bad) = match EnvFilter::try_new(spec) {
        Ok(f) => (f, None),
        Err(e) => (EnvFilter::new("info"), Some(e)),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(LogLayer::new(json, std::io::stderr))
        .try_init();
    if let Some(e) = bad {
        tracing::warn!(filter = spec, error = %e, "bad log filter; logging at info");
    }
    LogLevel {
        handle,
        from_env: env.is_some(),
    }
}
