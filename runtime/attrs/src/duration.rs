/// Parses a duration with a unit suffix (`500ms`, `30s`, `15m`, `1h`, `7d`) into milliseconds.
///
/// The error is a sentence that can be shown to the user as is.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let factor: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "invalid duration `{text}`: expected a whole number followed by one of the units ms, s, m, h, d (for example \"30s\")"
            ))
        }
    };
    if number.is_empty() {
        return Err(format!(
            "invalid duration `{text}`: the number is missing (for example \"30s\")"
        ));
    }
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("invalid duration `{text}`: the number is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_duration_ms;

    #[test]
    fn accepts_every_unit() {
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("15m"), Ok(900_000));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert_eq!(parse_duration_ms("60d"), Ok(5_184_000_000));
    }

    #[test]
    fn rejects_malformed_durations() {
        for bad in [
            "",
            "s",
            "30",
            "30 sec",
            "1.5h",
            "-1s",
            "99999999999999999999d",
        ] {
            assert!(parse_duration_ms(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
