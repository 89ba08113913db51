//! Human durations as operators write them in configuration: `90s`, `2m`, `1h`, `250ms`.

use std::time::Duration;

/// Why a duration could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationError {
    /// Nothing to read.
    #[error("empty duration")]
    Empty,
    /// Not a number followed by one of the units.
    #[error("invalid duration {0:?}: write a whole number followed by ms, s, m, h or d, like 90s or 2m")]
    Invalid(String),
}

/// Parses `<whole number><unit>` with unit `ms`, `s`, `m`, `h` or `d`.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| DurationError::Invalid(s.to_owned()))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => n.checked_mul(60).map(Duration::from_secs).ok_or_else(|| DurationError::Invalid(s.to_owned()))?,
        "h" => n.checked_mul(3600).map(Duration::from_secs).ok_or_else(|| DurationError::Invalid(s.to_owned()))?,
        "d" => n.checked_mul(86_400).map(Duration::from_secs).ok_or_else(|| DurationError::Invalid(s.to_owned()))?,
        _ => return Err(DurationError::Invalid(s.to_owned())),
    };
    Ok(d)
}

/// Writes a duration back in the largest unit that divides it evenly.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_read() {
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration(" 10s "), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5d"), Ok(Duration::from_secs(5 * 86_400)));
    }

    #[test]
    fn nonsense_is_rejected() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert!(parse_duration("2").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1.5s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
        assert!(parse_duration("9999999999999999999h").is_err());
    }

    #[test]
    fn format_picks_the_largest_unit() {
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_secs(360)), "6m");
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }
}
