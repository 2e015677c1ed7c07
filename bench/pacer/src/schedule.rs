//! The fixed-rate schedule (request `k` is due at `t0 + k / rate`, whatever happened to the
//! ones before it) and the percentiles of the latencies measured from those due times.

use std::time::Duration;

/// `total` requests at `rate` per second.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    rate: f64,
    total: u64,
}

impl Schedule {
    /// The schedule of `rate` requests per second over `duration_s` seconds; `None` unless
    /// both are positive and finite.
    pub fn new(rate: f64, duration_s: f64) -> Option<Schedule> {
        if !(rate.is_finite() && rate > 0.0 && duration_s.is_finite() && duration_s > 0.0) {
            return None;
        }
        let total = (rate * duration_s).round();
        (total >= 1.0 && total < u64::MAX as f64).then_some(Schedule { rate, total: total as u64 })
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// When request `k` is due, after `t0`. Computed from `k` alone, never by adding
    /// intervals, so rounding does not accumulate.
    pub fn due(&self, k: u64) -> Duration {
        Duration::from_nanos((k as f64 * 1e9 / self.rate).round() as u64)
    }
}

/// Nearest-rank percentile `p` (0 < p <= 100) of an ascending slice; 0 when empty.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // The epsilon keeps 99.9 % of 1000 at rank 999 despite binary floating point.
    let rank = (p * sorted.len() as f64 / 100.0 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The percentiles the PACED line prints, in microseconds, from latencies in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Summary {
    pub fn of(latencies_ns: &mut [u64]) -> Summary {
        latencies_ns.sort_unstable();
        let us = |p: f64| percentile(latencies_ns, p) / 1000;
        Summary {
            p50: us(50.0),
            p90: us(90.0),
            p99: us(99.0),
            p999: us(99.9),
            max: latencies_ns.last().copied().unwrap_or(0) / 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_are_k_over_rate() {
        let s = Schedule::new(1000.0, 2.0).unwrap();
        assert_eq!(s.total(), 2000);
        assert_eq!(s.due(0), Duration::ZERO);
        assert_eq!(s.due(1), Duration::from_millis(1));
        assert_eq!(s.due(1999), Duration::from_millis(1999));
        let s = Schedule::new(3.0, 1.0).unwrap();
        assert_eq!(s.due(1), Duration::from_nanos(333_333_333));
        assert_eq!(s.due(2), Duration::from_nanos(666_666_667));
        // No accumulated drift after many requests at an awkward rate.
        let s = Schedule::new(7.0, 1e6).unwrap();
        assert_eq!(s.due(7_000_000), Duration::from_secs(1_000_000));
    }

    #[test]
    fn fractional_rates_and_totals_round() {
        let s = Schedule::new(5436.5, 10.0).unwrap();
        assert_eq!(s.total(), 54365);
        assert_eq!(s.due(54365), Duration::from_secs(10));
        assert_eq!(Schedule::new(2.5, 1.0).unwrap().total(), 3);
    }

    #[test]
    fn nonsense_schedules_are_refused() {
        for (r, d) in [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.0), (f64::NAN, 1.0), (f64::INFINITY, 1.0), (0.1, 1.0)] {
            assert!(Schedule::new(r, d).is_none(), "rate {r} duration {d}");
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 99.9), 100);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&v, 0.001), 1);
        assert_eq!(percentile(&[7], 50.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 99.9), 999);
    }

    #[test]
    fn summary_sorts_and_converts_to_microseconds() {
        let mut v: Vec<u64> = (1..=1000).rev().map(|i| i * 1000 + 999).collect();
        let s = Summary::of(&mut v);
        assert_eq!(s, Summary { p50: 500, p90: 900, p99: 990, p999: 999, max: 1000 });
        assert_eq!(Summary::of(&mut []), Summary { p50: 0, p90: 0, p99: 0, p999: 0, max: 0 });
    }
}
