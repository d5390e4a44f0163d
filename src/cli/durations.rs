//! Durations as the CLI's flags take them (`18h`, `30m`, `7d`, `1h30m`), never more than a
//! year (a leaf certificate's lifetime), checked so an absurd value is a usage error.

use time::Duration;

use super::failure::{EXIT_USAGE, Failure};

/// The longest duration any flag takes.
const LONGEST: Duration = Duration::days(365);

/// `18h`, `30m`, `7d`, `1h30m`: days, hours, minutes, seconds.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let bad = || {
        Failure::new(EXIT_USAGE, format!("`{text}` is not a duration"))
            .hint("write it like 18h, 30m, 7d or 1h30m (at most 365d)")
    };
    let mut total = Duration::ZERO;
    let mut digits = String::new();
    for character in text.chars() {
        if character.is_ascii_digit() {
            digits.push(character);
            continue;
        }
        let count: i64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        let unit_seconds: i64 = match character {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad().into()),
        };
        // Checked: an absurd count is a bad duration, never an overflow.
        let part = count
            .checked_mul(unit_seconds)
            .map(Duration::seconds)
            .ok_or_else(bad)?;
        total = total.checked_add(part).ok_or_else(bad)?;
    }
    if !digits.is_empty() || total <= Duration::ZERO || total > LONGEST {
        return Err(bad().into());
    }
    Ok(total)
}

/// `--capacity-timeout`: a duration, or zero (`0`, `0s`, …) for not waiting at all.
pub fn wait_duration(text: &str) -> anyhow::Result<std::time::Duration> {
    if matches!(text, "0" | "0s" | "0m" | "0h" | "0d") {
        return Ok(std::time::Duration::ZERO);
    }
    let parsed = parse_duration(text)?;
    Ok(std::time::Duration::from_secs(
        u64::try_from(parsed.whole_seconds()).unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_kops_flags() {
        assert_eq!(parse_duration("18h").unwrap(), Duration::hours(18));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::minutes(90));
        assert_eq!(parse_duration("7d").unwrap(), Duration::days(7));
        for bad in [
            "",
            "18",
            "h",
            "0h",
            "-1h",
            "18x",
            "400d",
            "99999999999999999999h",
            // Each of these panicked once (time's constructors overflow).
            "106751991167301d",
            "9223372036854775807d",
            "9223372036854775807s9223372036854775807s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_wait_may_be_zero() {
        assert_eq!(wait_duration("0s").unwrap(), std::time::Duration::ZERO);
        assert_eq!(
            wait_duration("10m").unwrap(),
            std::time::Duration::from_secs(600)
        );
        assert!(wait_duration("-1m").is_err());
    }
}
