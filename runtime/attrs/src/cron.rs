//! The cron dialect forge accepts, shared by `forge check` (FG301) and the runtime's
//! scheduler: whatever the check accepts is exactly what the scheduler runs.

use croner::parser::{CronParser, Seconds, Year};

/// 5 fields, or 6 with leading seconds; no year field; the day of month and day of week
/// combine with OR when both are restricted, as in Vixie cron.
pub fn cron_parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .dom_and_dow(false)
        .build()
}

/// The cron expression `daily_at = "HH:MM"` stands for; `None` unless the time is exactly
/// `HH:MM` on a 24-hour clock.
pub fn daily_at_expression(time: &str) -> Option<String> {
    let (hour, minute) = time.split_once(':')?;
    let two_digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(hour) || !two_digits(minute) {
        return None;
    }
    let (hour, minute): (u32, u32) = (hour.parse().ok()?, minute.parse().ok()?);
    (hour < 24 && minute < 60).then(|| format!("{minute} {hour} * * *"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_at_becomes_a_five_field_expression() {
        assert_eq!(daily_at_expression("09:05").as_deref(), Some("5 9 * * *"));
        assert_eq!(daily_at_expression("00:00").as_deref(), Some("0 0 * * *"));
        for bad in ["9:05", "24:00", "12:60", "12-00", "", "aa:bb"] {
            assert_eq!(daily_at_expression(bad), None, "{bad}");
        }
    }

    #[test]
    fn seconds_are_optional() {
        assert!(cron_parser().parse("*/2 * * * * *").is_ok());
        assert!(cron_parser().parse("0 9 * * *").is_ok());
        assert!(cron_parser().parse("0 0 9 * * * 2026").is_err());
    }
}
