//! Which backups to keep, as kops' etcd-manager keeps them: every backup of the last hour,
//! one per hour for a week, one per day for 90 days; the newest backup is always kept.
//!
//! Within an hour (or a day) the oldest backup is the one kept: it is the first to age into
//! that window and stays the oldest, so what is kept never changes as time passes, and a
//! backup once dropped was never the only one of its hour or day.

use std::collections::BTreeSet;

/// The windows, from the newest backups to the oldest: up to `age` seconds old, keep one per
/// `bucket` seconds (`None`: keep every one).
const WINDOWS: [(i64, Option<i64>); 3] = [
    (3600, None),
    (7 * 86_400, Some(3600)),
    (90 * 86_400, Some(86_400)),
];

/// The ids of the backups to delete, of `backups` (id, taken at, in seconds since the epoch)
/// at `now`.
pub fn expired(backups: &[(String, i64)], now: i64) -> Vec<String> {
    let mut by_age: Vec<&(String, i64)> = backups.iter().collect();
    // Oldest first, so the first seen in a bucket is the one kept.
    by_age.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let newest = by_age.last().map(|(id, _)| id.clone());
    let mut filled: BTreeSet<(usize, i64)> = BTreeSet::new();
    let mut expired = Vec::new();
    for (id, taken_at) in by_age {
        let age = now.saturating_sub(*taken_at);
        let window = WINDOWS
            .iter()
            .enumerate()
            .find(|(_, (limit, _))| age <= *limit);
        let keep = match window {
            None => false,
            Some((_, (_, None))) => true,
            Some((index, (_, Some(bucket)))) => {
                filled.insert((index, taken_at.div_euclid(*bucket)))
            }
        };
        if !keep && Some(id) != newest.as_ref() {
            expired.push(id.clone());
        }
    }
    expired
}

#[cfg(test)]
mod tests {
    use super::expired;

    const HOUR: i64 = 3600;
    const DAY: i64 = 86_400;
    /// A Monday at midnight UTC, far from the epoch.
    const NOW: i64 = 1_764_547_200 + 30 * DAY;

    fn history(ages: &[i64]) -> Vec<(String, i64)> {
        ages.iter()
            .map(|age| (format!("b{age}"), NOW - age))
            .collect()
    }

    fn kept(ages: &[i64]) -> Vec<i64> {
        let backups = history(ages);
        let gone = expired(&backups, NOW);
        let mut kept: Vec<i64> = ages
            .iter()
            .copied()
            .filter(|age| !gone.contains(&format!("b{age}")))
            .collect();
        kept.sort();
        kept
    }

    #[test]
    fn everything_of_the_last_hour_is_kept() {
        let ages: Vec<i64> = (0..4).map(|i| i * 15 * 60).collect();
        assert_eq!(kept(&ages), ages);
    }

    #[test]
    fn a_backup_every_15_minutes_for_120_days_thins_to_the_windows() {
        let ages: Vec<i64> = (0..120 * 96).map(|i| i * 15 * 60).collect();
        let kept = kept(&ages);
        let last_hour = kept.iter().filter(|age| **age <= HOUR).count();
        let hourly = kept
            .iter()
            .filter(|age| **age > HOUR && **age <= 7 * DAY)
            .count();
        let daily = kept
            .iter()
            .filter(|age| **age > 7 * DAY && **age <= 90 * DAY)
            .count();
        assert_eq!(last_hour, 5, "0, 15, 30, 45 and 60 minutes");
        // One per clock hour whose oldest backup is between 1 h and 7 d old.
        assert_eq!(hourly, 7 * 24 - 1);
        assert!((83..=84).contains(&daily), "{daily}");
        assert!(
            kept.iter().all(|age| *age <= 90 * DAY),
            "nothing older than 90 days"
        );
        // Within each kept hour, the oldest backup of that hour.
        for age in kept.iter().filter(|age| **age > HOUR && **age <= 7 * DAY) {
            assert_eq!((NOW - age).rem_euclid(HOUR), 0, "{age}");
        }
    }

    #[test]
    fn what_is_kept_today_is_still_kept_tomorrow_if_its_window_allows() {
        let ages: Vec<i64> = (0..30 * 96).map(|i| i * 15 * 60 + 7).collect();
        let today = kept(&ages);
        // A day later (every backup a day older), nothing kept now is dropped unless its
        // window changed to one that keeps fewer.
        let backups = history(&ages);
        let gone_tomorrow = expired(&backups, NOW + DAY);
        for age in &today {
            let tomorrow = age + DAY;
            let same_window =
                (*age > HOUR && tomorrow <= 7 * DAY) || (*age > 7 * DAY && tomorrow <= 90 * DAY);
            if same_window {
                assert!(
                    !gone_tomorrow.contains(&format!("b{age}")),
                    "b{age} was kept and is dropped a day later"
                );
            }
        }
    }

    #[test]
    fn the_newest_backup_is_kept_however_old() {
        assert_eq!(kept(&[200 * DAY, 100 * DAY]), [100 * DAY]);
        assert_eq!(expired(&[], NOW), Vec::<String>::new());
    }
}
