//! Latency distribution of repeated round trips.

use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Latency {
    pub samples: usize,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    /// Nearest-rank percentiles; `None` for no samples.
    pub fn from_samples(mut v: Vec<f64>) -> Option<Latency> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            v[i]
        };
        Some(Latency {
            samples: v.len(),
            min_ms: v[0],
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: v[v.len() - 1],
            mean_ms: v.iter().sum::<f64>() / v.len() as f64,
        })
    }

    pub fn line(&self) -> String {
        format!(
            "n={} min {:.2} p50 {:.2} p99 {:.2} max {:.2} ms",
            self.samples, self.min_ms, self.p50_ms, self.p99_ms, self.max_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let l = Latency::from_samples((1..=100).map(f64::from).collect()).unwrap();
        assert_eq!(
            (l.min_ms, l.p50_ms, l.p99_ms, l.max_ms),
            (1.0, 50.0, 99.0, 100.0)
        );
        let one = Latency::from_samples(vec![3.0]).unwrap();
        assert_eq!((one.p50_ms, one.p99_ms), (3.0, 3.0));
        assert!(Latency::from_samples(vec![]).is_none());
    }
}
