//! Running statistics over readings: what `temperature` and `humidity` accumulate.
//!
//! The average is kept as a sum so that folding a batch into a staged record is a
//! count-weighted mean: `(staged.average * staged.count + Σ values) / (staged.count + n)`.

use crate::{no_readings, Folded};

/// The fold of a statistics accumulate (`temperature`, `humidity`): the staged record (if
/// any) and then the batch's records in batch order (so `last` is the last reading), each
/// turned into statistics by `contribution` (`None`: the payload is no `kind` record), and the
/// result serialized by `write`.
///
/// Items that are no `kind` record are ignored with a warning; a staged value that is none is
/// an error (it can only come from a miswired graph). When neither the batch nor the staged
/// record holds a reading the window is an error, not a record of zeros: whatever was routed
/// here becomes a dead letter. Statistics that overflowed are an error too.
pub fn fold(
    kind: &str,
    staged: Option<&[u8]>,
    items: &[Option<&[u8]>],
    contribution: impl Fn(&[u8]) -> Option<Stats>,
    write: impl FnOnce(&Stats) -> Result<Vec<u8>, String>,
) -> Result<Folded, String> {
    let mut stats = match staged {
        None => Stats::new(),
        Some(bytes) => contribution(bytes).ok_or_else(|| {
            format!(
                "the staged value is not a {kind} record: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(120)])
            )
        })?,
    };
    let mut warnings = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match item.and_then(&contribution) {
            Some(more) => stats.merge(&more),
            None => warnings.push(format!(
                "batch item {index} is not a {kind} ({}); ignored",
                match item {
                    None => "a snapshot".to_owned(),
                    Some(bytes) => format!("{} bytes", bytes.len()),
                }
            )),
        }
    }
    if stats.count() == 0 {
        return Err(no_readings(kind, items.len()));
    }
    stats.check_finite()?;
    Ok(Folded {
        payload: write(&stats)?,
        warnings,
    })
}

/// Statistics of the readings folded so far.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stats {
    count: u64,
    sum: f64,
    max: f64,
    min: f64,
    last: f64,
}

impl Stats {
    /// No readings yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Statistics already summarised in a record (a staged value, or a partial aggregate).
    /// A record with `count == 0` summarises nothing, whatever its other fields say.
    pub fn from_summary(count: u64, max: f64, min: f64, average: f64, last: f64) -> Self {
        if count == 0 {
            return Self::new();
        }
        Stats {
            count,
            sum: average * count as f64,
            max,
            min,
            last,
        }
    }

    /// What one record contributes: a reading (`value` present) its value, an accumulated record
    /// (no `value`) its summary.
    pub fn of_record(value: Option<f64>, count: u64, max: f64, min: f64, average: f64, last: f64) -> Self {
        match value {
            Some(value) => {
                let mut stats = Self::new();
                stats.add(value);
                stats
            }
            None => Self::from_summary(count, max, min, average, last),
        }
    }

    /// Folds one reading; it becomes `last`.
    pub fn add(&mut self, value: f64) {
        if self.count == 0 {
            self.max = value;
            self.min = value;
        } else {
            self.max = self.max.max(value);
            self.min = self.min.min(value);
        }
        self.count += 1;
        self.sum += value;
        self.last = value;
    }

    /// Folds statistics that come after these ones (their `last` wins).
    pub fn merge(&mut self, later: &Stats) {
        if later.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *later;
            return;
        }
        self.max = self.max.max(later.max);
        self.min = self.min.min(later.min);
        self.count += later.count;
        self.sum += later.sum;
        self.last = later.last;
    }

    /// Number of readings.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Largest reading, 0.0 when none.
    pub fn max(&self) -> f64 {
        self.max
    }

    /// Smallest reading, 0.0 when none.
    pub fn min(&self) -> f64 {
        self.min
    }

    /// Mean reading, 0.0 when none.
    pub fn average(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// Last reading in fold order, 0.0 when none.
    pub fn last(&self) -> f64 {
        self.last
    }

    /// An error sentence when a statistic is not finite (huge readings overflowed the sum):
    /// JSON cannot carry it (serde_json would write `null`), so the fold must fail loudly.
    pub fn check_finite(&self) -> Result<(), String> {
        let all = [self.max, self.min, self.average(), self.last];
        if all.iter().all(|v| v.is_finite()) {
            Ok(())
        } else {
            Err(format!(
                "statistics overflowed (max {}, min {}, average {}, last {}): readings too large to accumulate",
                self.max,
                self.min,
                self.average(),
                self.last
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_all_zero() {
        let s = Stats::new();
        assert_eq!(
            (s.count(), s.max(), s.min(), s.average(), s.last()),
            (0, 0.0, 0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn three_values() {
        let mut s = Stats::new();
        for v in [10.5, 20.25, 0.75] {
            s.add(v);
        }
        // count 3, max 20.25, min 0.75, average 31.5 / 3 = 10.5, last 0.75.
        assert_eq!(
            (s.count(), s.max(), s.min(), s.average(), s.last()),
            (3, 20.25, 0.75, 10.5, 0.75)
        );
    }

    #[test]
    fn negative_values_set_max_and_min() {
        let mut s = Stats::new();
        s.add(-5.0);
        s.add(-1.0);
        assert_eq!((s.max(), s.min(), s.average()), (-1.0, -5.0, -3.0));
    }

    #[test]
    fn staged_summary_is_count_weighted() {
        // Staged: 2 readings averaging 10; batch: 40 → (10*2 + 40) / 3 = 20.
        let mut s = Stats::from_summary(2, 15.0, 5.0, 10.0, 5.0);
        s.add(40.0);
        assert_eq!(
            (s.count(), s.max(), s.min(), s.average(), s.last()),
            (3, 40.0, 5.0, 20.0, 40.0)
        );
        // A summary of nothing does not pin max/min at its zeros.
        let mut empty = Stats::from_summary(0, 0.0, 0.0, 0.0, 0.0);
        empty.add(7.0);
        assert_eq!((empty.max(), empty.min()), (7.0, 7.0));
    }

    #[test]
    fn merge_keeps_later_last() {
        let mut a = Stats::new();
        a.add(1.0);
        let mut b = Stats::new();
        b.add(3.0);
        b.add(2.0);
        a.merge(&b);
        assert_eq!(
            (a.count(), a.max(), a.min(), a.average(), a.last()),
            (3, 3.0, 1.0, 2.0, 2.0)
        );
        let mut empty = Stats::new();
        empty.merge(&Stats::new());
        assert_eq!(empty.count(), 0);
    }

    #[test]
    fn overflow_is_reported() {
        let mut s = Stats::new();
        s.add(f64::MAX);
        s.add(f64::MAX);
        assert!(s.check_finite().expect_err("overflow").contains("overflowed"));
        let mut ok = Stats::new();
        ok.add(1.0);
        assert!(ok.check_finite().is_ok());
    }
}
