//! The Queues view's figures: each queue and subscription's counts, its oldest message's age,
//! and in/out rates computed from two successive samples. In: the growth of the entity's last
//! sequence number (for a subscription, its topic's) per second. Out: in minus the growth of
//! what the entity holds (active, scheduled, deferred, dead-lettered) per second, that is what
//! was completed, forwarded or expired.

use chrono::{DateTime, Utc};

use crate::sources::{EntityInfo, EntitySample};

/// One row of the Queues table.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRow {
    /// The entity.
    pub entity: EntityInfo,
    /// The latest sample.
    pub sample: EntitySample,
    /// Messages in per second since the previous sample (none on the first).
    pub in_rate: Option<f64>,
    /// Messages out per second since the previous sample.
    pub out_rate: Option<f64>,
}

impl QueueRow {
    /// The row of `sample`, with rates against `previous` when there is one.
    pub fn of(entity: EntityInfo, sample: EntitySample, previous: Option<&EntitySample>) -> Self {
        let (in_rate, out_rate) = previous.map_or((None, None), |p| rates(p, &sample));
        Self {
            entity,
            sample,
            in_rate,
            out_rate,
        }
    }

    /// The oldest active message's age in seconds.
    pub fn oldest_age_secs(&self) -> Option<i64> {
        self.sample
            .oldest_active
            .map(|t| (self.sample.at - t).num_seconds().max(0))
    }
}

fn held(s: &EntitySample) -> i64 {
    (s.active + s.scheduled + s.deferred + s.dead_lettered) as i64
}

/// In and out per second between two samples (none when no time passed).
pub fn rates(before: &EntitySample, after: &EntitySample) -> (Option<f64>, Option<f64>) {
    let secs = (after.at - before.at).num_milliseconds() as f64 / 1000.0;
    if secs <= 0.0 || !before.browsed || !after.browsed {
        return (None, None);
    }
    let came = (after.last_sequence_number - before.last_sequence_number).max(0);
    let went = (came - (held(after) - held(before))).max(0);
    (Some(came as f64 / secs), Some(went as f64 / secs))
}

/// A rate as the table shows it: `-`, `0`, `0.4/s`, `12/s`.
pub fn format_rate(rate: Option<f64>) -> String {
    match rate {
        None => "-".into(),
        Some(0.0) => "0".into(),
        Some(r) if r < 10.0 => format!("{r:.1}/s"),
        Some(r) => format!("{r:.0}/s"),
    }
}

/// An age in seconds as the table shows it.
pub fn format_age(secs: Option<i64>, now: DateTime<Utc>) -> String {
    match secs {
        None => "-".into(),
        Some(s) => crate::documents::age(now - chrono::Duration::seconds(s), now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(active: u64, dead: u64, seq: i64, at_ms: i64) -> EntitySample {
        EntitySample {
            active,
            scheduled: 0,
            deferred: 0,
            dead_lettered: dead,
            oldest_active: None,
            last_sequence_number: seq,
            browsed: true,
            at: DateTime::from_timestamp_millis(1_700_000_000_000 + at_ms).unwrap(),
        }
    }

    #[test]
    fn rates_come_from_successive_samples() {
        // 10 sent in 2 s; 4 more held than before: 6 went out.
        let (i, o) = rates(&sample(1, 0, 100, 0), &sample(4, 1, 110, 2_000));
        assert_eq!((i, o), (Some(5.0), Some(3.0)));
        // Nothing sent, 2 consumed.
        let (i, o) = rates(&sample(3, 0, 7, 0), &sample(1, 0, 7, 1_000));
        assert_eq!((i, o), (Some(0.0), Some(2.0)));
        assert_eq!(
            rates(&sample(0, 0, 0, 5), &sample(0, 0, 0, 5)),
            (None, None)
        );
        assert_eq!(format_rate(Some(0.25)), "0.2/s");
        assert_eq!(format_rate(Some(12.0)), "12/s");
        assert_eq!(format_rate(None), "-");
    }

    #[test]
    fn the_oldest_age_is_measured_at_the_sample() {
        let mut s = sample(1, 0, 1, 10_000);
        s.oldest_active = Some(s.at - chrono::Duration::seconds(42));
        let row = QueueRow::of(
            EntityInfo {
                path: "q".into(),
                subscription: false,
                forward_to: None,
            },
            s,
            None,
        );
        assert_eq!(row.oldest_age_secs(), Some(42));
        assert_eq!((row.in_rate, row.out_rate), (None, None));
    }
}
