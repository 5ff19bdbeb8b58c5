//! Time bounds for provider queries: `now`, relative `now-15m`, RFC 3339 and epoch seconds.
//!
//! Query operations take `from`/`to` from people and agents in whichever of these
//! forms is handy, and resolve them against one `now` so a window is consistent.

use chrono::{DateTime, TimeDelta, Utc};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The forms a time bound may take, for error hints and schema descriptions.
pub const TIME_FORMS_HINT: &str =
    "use `now`, a relative time such as `now-15m`, `now-1h` or `now-2d` \
     (units s, m, h, d, w), an RFC 3339 time such as `2024-05-01T12:00:00Z`, or epoch seconds";

/// The largest epoch-seconds value accepted (9999-12-31T23:59:59Z); larger numbers
/// are almost always milliseconds.
const MAX_EPOCH_SECONDS: i64 = 253_402_300_799;

/// A point in time as a caller wrote it: epoch seconds or text.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TimeBound {
    /// Seconds since the Unix epoch.
    EpochSeconds(i64),
    /// `now`, `now-15m`, an RFC 3339 time, or epoch seconds as text.
    Text(String),
}

impl TimeBound {
    /// Resolves the bound against `now`; `field` names the parameter in errors.
    pub fn resolve(&self, field: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
        match self {
            Self::EpochSeconds(seconds) => from_epoch_seconds(field, *seconds),
            Self::Text(text) => parse_time(field, text, now),
        }
    }
}

impl From<&str> for TimeBound {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

/// A resolved window `[from, to]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// The start of the window.
    pub from: DateTime<Utc>,
    /// The end of the window.
    pub to: DateTime<Utc>,
}

impl TimeRange {
    /// Resolves optional `from`/`to` parameters; a missing `to` is `now` and a
    /// missing `from` is `default_lookback` before `to`.
    pub fn resolve(
        from: Option<&TimeBound>,
        to: Option<&TimeBound>,
        default_lookback: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        Self::resolve_fields(("from", from), ("to", to), default_lookback, now)
    }

    /// Like [`TimeRange::resolve`] for parameters with other names (`start`/`end`).
    pub fn resolve_fields(
        (from_field, from): (&str, Option<&TimeBound>),
        (to_field, to): (&str, Option<&TimeBound>),
        default_lookback: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let to = match to {
            Some(bound) => bound.resolve(to_field, now)?,
            None => now,
        };
        let from = match from {
            Some(bound) => bound.resolve(from_field, now)?,
            None => to.checked_sub_signed(default_lookback).ok_or_else(|| {
                Error::invalid_input(to_field, format!("`{to_field}` is too far in the past"))
            })?,
        };
        if from > to {
            return Err(Error::invalid_input(
                from_field,
                format!(
                    "`{from_field}` ({}) is after `{to_field}` ({})",
                    from.to_rfc3339(),
                    to.to_rfc3339()
                ),
            )
            .with_hint(format!("swap `{from_field}` and `{to_field}`")));
        }
        Ok(Self { from, to })
    }

    /// The start as epoch seconds.
    pub fn from_seconds(&self) -> i64 {
        self.from.timestamp()
    }

    /// The end as epoch seconds.
    pub fn to_seconds(&self) -> i64 {
        self.to.timestamp()
    }
}

/// Parses `now`, `now-<n><unit>`, RFC 3339 or epoch seconds; `field` names the
/// parameter in errors.
pub fn parse_time(field: &str, input: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let text = input.trim();
    if text.is_empty() {
        return Err(invalid_time(field, input, "it is empty"));
    }
    if let Some(rest) = strip_prefix_ignore_case(text, "now") {
        return parse_relative(field, input, rest.trim_start(), now);
    }
    if text.bytes().all(|byte| byte.is_ascii_digit()) {
        let seconds = text
            .parse::<i64>()
            .map_err(|_| invalid_time(field, input, "the number is too large"))?;
        return from_epoch_seconds(field, seconds);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| invalid_time(field, input, &error.to_string()))
}

fn parse_relative(
    field: &str,
    input: &str,
    offset: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>> {
    if offset.is_empty() {
        return Ok(now);
    }
    let Some(amount) = offset.strip_prefix('-') else {
        return Err(invalid_time(
            field,
            input,
            "a relative time must look back, like `now-15m`",
        ));
    };
    let amount = amount.trim_start();
    let digits_end = amount
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(amount.len());
    let (number, unit) = amount.split_at(digits_end);
    let number: i64 = number
        .parse()
        .map_err(|_| invalid_time(field, input, "expected a number after `now-`"))?;
    let unit_seconds: i64 = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        other => {
            return Err(invalid_time(
                field,
                input,
                &format!("unknown unit `{other}`; use s, m, h, d or w"),
            ))
        }
    };
    number
        .checked_mul(unit_seconds)
        .and_then(TimeDelta::try_seconds)
        .and_then(|delta| now.checked_sub_signed(delta))
        .ok_or_else(|| invalid_time(field, input, "it is too far in the past"))
}

fn from_epoch_seconds(field: &str, seconds: i64) -> Result<DateTime<Utc>> {
    let input = seconds.to_string();
    if seconds < 0 {
        return Err(invalid_time(
            field,
            &input,
            "epoch seconds cannot be negative",
        ));
    }
    if seconds > MAX_EPOCH_SECONDS {
        return Err(invalid_time(
            field,
            &input,
            "it is past the year 9999; epoch values must be seconds, not milliseconds",
        ));
    }
    DateTime::from_timestamp(seconds, 0)
        .ok_or_else(|| invalid_time(field, &input, "it is out of range"))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn invalid_time(field: &str, input: &str, reason: &str) -> Error {
    Error::invalid_input(
        field,
        format!("`{field}` is not a valid time (`{input}`): {reason}"),
    )
    .with_hint(TIME_FORMS_HINT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn now_and_relative_times_count_back_from_now() {
        assert_eq!(parse_time("from", "now", now()).unwrap(), now());
        assert_eq!(parse_time("from", " NOW ", now()).unwrap(), now());
        assert_eq!(
            parse_time("from", "now-15m", now()).unwrap(),
            at("2024-05-01T11:45:00Z")
        );
        assert_eq!(
            parse_time("from", "now-1h", now()).unwrap(),
            at("2024-05-01T11:00:00Z")
        );
        assert_eq!(
            parse_time("from", "now-2d", now()).unwrap(),
            at("2024-04-29T12:00:00Z")
        );
        assert_eq!(
            parse_time("from", "now - 30s", now()).unwrap(),
            at("2024-05-01T11:59:30Z")
        );
        assert_eq!(
            parse_time("from", "now-1w", now()).unwrap(),
            at("2024-04-24T12:00:00Z")
        );
    }

    #[test]
    fn absolute_times_parse_as_rfc3339_or_epoch_seconds() {
        assert_eq!(
            parse_time("to", "2024-05-01T14:00:00+02:00", now()).unwrap(),
            at("2024-05-01T12:00:00Z")
        );
        assert_eq!(
            parse_time("to", "1714564800", now()).unwrap(),
            at("2024-05-01T12:00:00Z")
        );
        assert_eq!(
            TimeBound::EpochSeconds(1_714_564_800)
                .resolve("to", now())
                .unwrap(),
            at("2024-05-01T12:00:00Z")
        );
    }

    #[test]
    fn malformed_times_name_the_field_and_the_accepted_forms() {
        for bad in [
            "",
            "yesterday",
            "now+5m",
            "now-5y",
            "now-m",
            "2024-13-01T00:00:00Z",
        ] {
            let error = parse_time("from", bad, now()).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidInput, "{bad}");
            assert_eq!(error.field(), Some("from"), "{bad}");
            assert!(error.hint().unwrap().contains("now-15m"), "{bad}");
        }
    }

    #[test]
    fn milliseconds_are_rejected_with_a_pointed_reason() {
        let error = TimeBound::EpochSeconds(1_714_564_800_000)
            .resolve("start", now())
            .unwrap_err();
        assert_eq!(error.field(), Some("start"));
        assert!(
            error.message().contains("milliseconds"),
            "{}",
            error.message()
        );
        assert!(parse_time("start", "-5", now()).is_err());
    }

    #[test]
    fn bounds_deserialize_from_numbers_and_strings() {
        let bound: TimeBound = serde_json::from_value(serde_json::json!(1_714_564_800)).unwrap();
        assert_eq!(bound, TimeBound::EpochSeconds(1_714_564_800));
        let bound: TimeBound = serde_json::from_value(serde_json::json!("now-1h")).unwrap();
        assert_eq!(bound, TimeBound::Text("now-1h".into()));
    }

    #[test]
    fn ranges_default_to_a_lookback_ending_now() {
        let range = TimeRange::resolve(None, None, TimeDelta::minutes(15), now()).unwrap();
        assert_eq!(range.to, now());
        assert_eq!(range.from, at("2024-05-01T11:45:00Z"));
        assert_eq!(range.to_seconds() - range.from_seconds(), 900);

        let to = TimeBound::from("2024-05-01T10:00:00Z");
        let range = TimeRange::resolve(None, Some(&to), TimeDelta::hours(1), now()).unwrap();
        assert_eq!(range.from, at("2024-05-01T09:00:00Z"));
    }

    #[test]
    fn inverted_ranges_are_rejected_naming_the_start_field() {
        let start = TimeBound::from("now-1h");
        let end = TimeBound::from("now-2h");
        let error = TimeRange::resolve_fields(
            ("start", Some(&start)),
            ("end", Some(&end)),
            TimeDelta::hours(1),
            now(),
        )
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        assert_eq!(error.field(), Some("start"));
        assert!(
            error.message().contains("after `end`"),
            "{}",
            error.message()
        );
    }
}
