//! FG301: a cron's schedule and time zone.
//!
//! Cron expressions are validated with `croner`, configured by `forge_attrs::cron::cron_parser`; the runtime
//! must compute fire times with the same crate and the same configuration, so that whatever
//! forge check accepts is exactly what the scheduler runs.

use chrono::TimeZone as _;
use croner::Cron;
use forge_attrs::cron::cron_parser as parser;
use forge_attrs::{Options, Schedule};

use super::{Project, Rule};
use crate::ir::{Diagnostic, Handler};

pub const RULES: &[Rule] = &[Rule {
    code: "FG301",
    title: "invalid cron schedule or time zone",
    explanation: "A cron's schedule is a string, so a typo compiles and the cron silently never runs, or runs at the wrong time. forge check validates it with the parser the scheduler uses: a cron expression has 5 fields (minute hour day-of-month month day-of-week) or 6 with a leading seconds field, or is one of @yearly, @annually, @monthly, @weekly, @daily, @hourly, and must match at least one date (`0 0 30 2 *` never does); `every` must be at least one second, since every run is claimed through a database row and sub-second work belongs in a daemon's loop; `daily_at` is `HH:MM` from 00:00 to 23:59; `timezone` must be an IANA time zone name, such as `Europe/Berlin` or `UTC`, so that local times follow daylight saving time.",
    example: r#"// refused: there is no hour 25; the time zone is misspelt
#[forge::cron("0 25 * * *", timezone = "Europe/Berln")]
// refused
#[forge::cron(every = "500ms")]
#[forge::cron(daily_at = "9:00")]

// accepted
#[forge::cron("0 23 * * *", timezone = "Europe/Berlin")]
#[forge::cron(every = "1s")]
#[forge::cron(daily_at = "09:00")]"#,
}];

/// The shortest `every`. Each cron run is claimed through Postgres (one `forge_cron_runs`
/// row per scheduled time), which costs more than a sub-second interval leaves; work that
/// often belongs in a daemon's loop.
const MIN_EVERY_MS: u64 = 1_000;

pub fn check(project: &Project, out: &mut Vec<Diagnostic>) {
    for handler in &project.ir.handlers {
        let Options::Cron(options) = &handler.options else {
            continue;
        };
        let schedule = match &options.schedule {
            Schedule::Cron(expression) => expression_problem(expression),
            Schedule::EveryMs(ms) => every_problem(*ms),
            Schedule::DailyAt(time) => daily_at_problem(time),
        };
        out.extend(schedule.map(|p| p.into_diagnostic(handler, "this cron's schedule")));
        let zone = options.timezone.as_deref().and_then(timezone_problem);
        out.extend(zone.map(|p| p.into_diagnostic(handler, "this cron's time zone")));
    }
}

/// What is wrong and how to fix it; the span is the handler's, since the IR keeps no span
/// for attribute options.
struct Problem {
    message: String,
    help: String,
}

impl Problem {
    fn into_diagnostic(self, handler: &Handler, label: &str) -> Diagnostic {
        Diagnostic::error(
            "FG301",
            format!("cron `{}`: {}", handler.name, self.message),
            Some(handler.span.clone()),
        )
        .with_label(label)
        .with_help(self.help)
    }
}

/// Each field's name and the values it takes; a 5-field expression has no seconds.
const FIELDS: [(&str, &str); 6] = [
    ("second", "0–59"),
    ("minute", "0–59"),
    ("hour", "0–23"),
    (
        "day-of-month",
        "1–31, `L` (the last day) and `15W` (the weekday nearest the 15th)",
    ),
    ("month", "1–12 or JAN–DEC"),
    (
        "day-of-week",
        "0–7 or SUN–SAT (0 and 7 are Sunday), `5L` (the last Friday) and `1#2` (the second Monday)",
    ),
];

const NICKNAMES: [&str; 6] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@hourly",
];

const FIELD_COUNT_HELP: &str = "write 5 fields (minute hour day-of-month month day-of-week, e.g. `0 9 * * *`) or 6 with a leading seconds field";

fn invalid(expression: &str, detail: String, help: String) -> Problem {
    Problem {
        message: format!("invalid cron expression `{expression}`: {detail}"),
        help,
    }
}

fn expression_problem(expression: &str) -> Option<Problem> {
    if expression.trim_start().starts_with('@') {
        let known = NICKNAMES.contains(&expression.trim().to_lowercase().as_str());
        return (!known).then(|| {
            let help = format!("use one of {}, or 5 fields", NICKNAMES.join(", "));
            invalid(expression, "unknown shorthand".to_owned(), help)
        });
    }
    let fields: Vec<&str> = expression.split_whitespace().collect();
    if !(5..=6).contains(&fields.len()) {
        let detail = format!("it has {} fields", fields.len());
        return Some(invalid(expression, detail, FIELD_COUNT_HELP.to_owned()));
    }
    match parser().parse(expression) {
        Ok(cron) => never_fires(&cron).then(|| Problem {
            message: format!(
                "cron expression `{expression}` never fires: no date matches its day-of-month and month fields"
            ),
            help: "pick a day that exists in the chosen months (February has at most 29 days), or `L` for the last day of the month".to_owned(),
        }),
        Err(error) => Some(match bad_field(&fields) {
            Some(field) => field.problem(expression),
            None => invalid(expression, reason(&error), FIELD_COUNT_HELP.to_owned()),
        }),
    }
}

/// A field croner refuses.
struct BadField<'a> {
    name: &'static str,
    values: &'static str,
    text: &'a str,
    reason: String,
}

impl BadField<'_> {
    fn problem(&self, expression: &str) -> Problem {
        invalid(
            expression,
            format!(
                "the {} field `{}` is not valid ({})",
                self.name, self.text, self.reason
            ),
            format!(
                "the {} field takes {}, lists (`1,3`), ranges (`1-5`) and steps (`*/2`)",
                self.name, self.values
            ),
        )
    }
}

/// The first field croner refuses on its own, with every other field a wildcard, so that
/// the message can name it: croner's own errors do not say which field they are about.
fn bad_field<'a>(fields: &[&'a str]) -> Option<BadField<'a>> {
    let names = &FIELDS[FIELDS.len() - fields.len()..];
    (0..fields.len()).find_map(|index| {
        let probe: Vec<&str> = (0..fields.len())
            .map(|i| if i == index { fields[i] } else { "*" })
            .collect();
        let error = parser().parse(&probe.join(" ")).err()?;
        let (name, values) = names[index];
        Some(BadField {
            name,
            values,
            text: fields[index],
            reason: reason(&error),
        })
    })
}

/// croner's message as a clause: without its prefix and final period. Its message for an
/// illegal character quotes the field after it replaced names by numbers, which would
/// confuse more than help.
fn reason(error: &croner::errors::CronError) -> String {
    use croner::errors::CronError;
    let text = match error {
        CronError::IllegalCharacters(_) => return "unknown name or character".to_owned(),
        CronError::ComponentError(text) | CronError::InvalidPattern(text) => text.clone(),
        other => other.to_string(),
    };
    let text = text.trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_owned(),
    }
}

/// Whether no time at all matches, as for `0 0 30 2 *`. The search starts at a fixed date,
/// not the clock, so that the check is reproducible; starting in 2000, a leap year, lets a
/// schedule for February 29 be found at once. croner gives up at year 5000.
fn never_fires(cron: &Cron) -> bool {
    let Some(start) = chrono::Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single() else {
        return false;
    };
    cron.find_next_occurrence(&start, true).is_err()
}

fn every_problem(ms: u64) -> Option<Problem> {
    (ms < MIN_EVERY_MS).then(|| Problem {
        message: format!(
            "`every = \"{}\"` is shorter than one second",
            duration(ms)
        ),
        help: "use `every = \"1s\"` or longer; for work that must run more often, use a #[forge::daemon] with its own loop".to_owned(),
    })
}

fn daily_at_problem(time: &str) -> Option<Problem> {
    let wrong = |detail: &str, help: String| {
        Some(Problem {
            message: format!("`daily_at = \"{time}\"` {detail}"),
            help,
        })
    };
    let Some((hour, minute)) = clock_time(time) else {
        return wrong(
            "is not a time of day",
            "write the time as `HH:MM` on a 24-hour clock, e.g. `daily_at = \"09:00\"`".to_owned(),
        );
    };
    if hour > 23 {
        return wrong(
            "has no such hour",
            "hours run from 00 to 23; midnight is `\"00:00\"`".to_owned(),
        );
    }
    if minute > 59 {
        return wrong("has no such minute", "minutes run from 00 to 59".to_owned());
    }
    let padded = format!("{hour:02}:{minute:02}");
    if padded != time {
        return wrong(
            "is not in `HH:MM` form",
            format!("write `daily_at = \"{padded}\"`"),
        );
    }
    None
}

/// `H:MM`, `HH:MM` or `HH:M` as numbers; strictness about the padding is left to the caller,
/// so that it can suggest the padded form.
fn clock_time(time: &str) -> Option<(u32, u32)> {
    let (hour, minute) = time.split_once(':')?;
    let number = |part: &str| {
        let digits = (1..=2).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| part.parse::<u32>().ok()).flatten()
    };
    Some((number(hour)?, number(minute)?))
}

fn timezone_problem(zone: &str) -> Option<Problem> {
    if zone.parse::<chrono_tz::Tz>().is_ok() {
        return None;
    }
    let help = match suggest_zone(zone) {
        Some(name) => format!("did you mean `{name}`?"),
        None => "use an IANA time zone name, such as `Europe/Berlin`, `America/New_York` or `UTC`"
            .to_owned(),
    };
    Some(Problem {
        message: format!("unknown time zone `{zone}`"),
        help,
    })
}

/// A zone whose city matches (`Berlin` → `Europe/Berlin`), else the closest name.
fn suggest_zone(zone: &str) -> Option<&'static str> {
    let names = || chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
    let city = zone.replace(' ', "_");
    let by_city = names().find(|name| {
        name.rsplit('/')
            .next()
            .is_some_and(|last| last.eq_ignore_ascii_case(&city))
    });
    by_city.or_else(|| super::dispatch::closest(zone, names()))
}

/// Milliseconds as the attribute grammar writes them, in the largest exact unit.
pub(super) fn duration(ms: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ];
    UNITS
        .iter()
        // Not `is_multiple_of`: that needs Rust 1.87 and the workspace supports 1.85.
        .find(|(size, _)| ms != 0 && ms.checked_rem(*size) == Some(0))
        .map_or_else(
            || format!("{ms}ms"),
            |(size, unit)| format!("{}{unit}", ms / size),
        )
}

#[cfg(test)]
mod tests {
    use super::super::handler::testing::run;
    use super::*;
    use crate::lock::Lock;

    fn message(problem: Option<Problem>) -> Option<String> {
        problem.map(|p| format!("{} | {}", p.message, p.help))
    }

    #[test]
    fn accepts_valid_expressions() {
        for expression in [
            "0 9 * * *",
            "*/15 * * * *",
            "0 0 29 2 *",
            "0 0 30 2 MON",
            "0 9 * * MON-FRI",
            "0 0 L * *",
            "30 0 9 * * *",
            "0 0 1,15 jan,jul *",
            "@daily",
            "@Hourly",
        ] {
            assert_eq!(
                message(expression_problem(expression)),
                None,
                "{expression}"
            );
        }
    }

    #[test]
    fn names_the_wrong_field() {
        let cases = [
            (
                "0 25 * * *",
                "the hour field `25` is not valid (number out of bounds)",
            ),
            ("61 0 9 * * *", "the second field `61` is not valid"),
            (
                "0 9 * * MON-FRY",
                "the day-of-week field `MON-FRY` is not valid (unknown name or character)",
            ),
            ("0 9 32 * *", "the day-of-month field `32` is not valid"),
            ("0 9 * 13 *", "the month field `13` is not valid"),
            (
                "*/0 * * * *",
                "the minute field `*/0` is not valid (step cannot be zero)",
            ),
            (
                "* * * *",
                "invalid cron expression `* * * *`: it has 4 fields",
            ),
            ("0 0 0 1 1 * 2030", "7 fields"),
            ("@reboot", "unknown shorthand"),
            ("0 0 30 2 *", "`0 0 30 2 *` never fires"),
            ("0 0 31 4,6 *", "never fires"),
            ("", "0 fields"),
        ];
        for (expression, expected) in cases {
            let found = message(expression_problem(expression)).unwrap_or_default();
            assert!(found.contains(expected), "{expression}: {found}");
        }
    }

    #[test]
    fn every_is_at_least_a_second() {
        assert_eq!(message(every_problem(1_000)), None);
        assert_eq!(message(every_problem(1_500)), None);
        assert_eq!(
            message(every_problem(500)).as_deref(),
            Some("`every = \"500ms\"` is shorter than one second | use `every = \"1s\"` or longer; for work that must run more often, use a #[forge::daemon] with its own loop")
        );
    }

    #[test]
    fn daily_at_is_hh_mm() {
        for ok in ["00:00", "09:30", "23:59"] {
            assert_eq!(message(daily_at_problem(ok)), None, "{ok}");
        }
        let cases = [
            ("24:00", "has no such hour"),
            ("12:60", "has no such minute"),
            ("9:00", "write `daily_at = \"09:00\"`"),
            ("09:5", "write `daily_at = \"09:05\"`"),
            ("nine", "is not a time of day"),
            ("09:00:00", "is not a time of day"),
            ("-1:00", "is not a time of day"),
            ("", "is not a time of day"),
        ];
        for (time, expected) in cases {
            let found = message(daily_at_problem(time)).unwrap_or_default();
            assert!(found.contains(expected), "{time}: {found}");
        }
    }

    #[test]
    fn time_zones_are_iana_names() {
        for ok in ["Europe/Berlin", "UTC", "America/Argentina/Buenos_Aires"] {
            assert_eq!(message(timezone_problem(ok)), None, "{ok}");
        }
        let cases = [
            ("Europe/Berln", "did you mean `Europe/Berlin`?"),
            ("europe/berlin", "did you mean `Europe/Berlin`?"),
            ("Berlin", "did you mean `Europe/Berlin`?"),
            ("New York", "did you mean `America/New_York`?"),
            ("Mars/Olympus", "use an IANA time zone name"),
        ];
        for (zone, expected) in cases {
            let found = message(timezone_problem(zone)).unwrap_or_default();
            assert!(found.contains(expected), "{zone}: {found}");
        }
    }

    #[test]
    fn durations_use_the_largest_exact_unit() {
        let cases = [
            (0, "0ms"),
            (500, "500ms"),
            (1_500, "1500ms"),
            (90_000, "90s"),
            (3_600_000, "1h"),
            (5_184_000_000, "60d"),
        ];
        for (ms, text) in cases {
            assert_eq!(duration(ms), text);
        }
    }

    #[test]
    fn reports_schedule_and_zone_at_the_handler() {
        let source = r#"
use forge::prelude::*;
#[forge::cron("0 25 * * *", timezone = "Mars/Olympus")]
pub async fn nightly(ctx: &CronContext) -> Result<()> { Ok(()) }
#[forge::cron(daily_at = "07:00", timezone = "Europe/Berlin")]
pub async fn morning(ctx: &CronContext) -> Result<()> { Ok(()) }
"#;
        let found = run(source, &Lock::default(), check);
        let summary: Vec<(&str, u32, Option<&str>)> = found
            .iter()
            .map(|d| {
                let line = d.span.as_ref().map_or(0, |s| s.line);
                (d.message.as_str(), line, d.label.as_deref())
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "cron `nightly`: invalid cron expression `0 25 * * *`: the hour field `25` is not valid (number out of bounds)",
                    4,
                    Some("this cron's schedule")
                ),
                (
                    "cron `nightly`: unknown time zone `Mars/Olympus`",
                    4,
                    Some("this cron's time zone")
                ),
            ]
        );
    }
}
