//! The text forms of `date`, `time`, `timestamp` and `duration` literals, parsed as
//! Cassandra's serializers parse them, with their messages.
//!
//! A timestamp is `now`, milliseconds since the epoch written as an integer (`'1234567'`), or a
//! date `yyyy-mm-dd`, optionally followed by a space or `T` and a clock `hh:mm[:ss[.f…]]`,
//! optionally followed by a zone: `Z`, `+hh`, `+hhmm`, `+hh:mm` or a fixed zone name (`UTC`,
//! `GMT`, `UT`, each with an optional offset), with or without a space before it — the
//! union of the patterns Cassandra's `TimestampSerializer` tries. Without a zone the time is
//! UTC (Cassandra takes the server's zone; ringcache servers run in UTC). Zones named by
//! region (`Europe/Paris`, `PST`) would need a time zone database and are refused with the
//! same message as any other unparsable text. A date is `yyyy-mm-dd` or its raw form, days
//! as an unsigned integer with the epoch at 2^31. A duration is `1y2mo3w4d5h6m7s8ms9us10ns`
//! (each unit at most once, in that order), ISO 8601 `P1Y2M3DT4H5M6S`, `P2W`, or the ISO
//! alternative `P0001-02-03T04:05:06`, any of them negative.

use super::value::LiteralError;

/// Cassandra's refusal of a timestamp it cannot read.
fn bad_timestamp(text: &str) -> LiteralError {
    LiteralError::Value(format!(
        "Unable to coerce '{text}' to a formatted date (long)"
    ))
}

/// A `timestamp` literal as milliseconds since the epoch.
pub fn timestamp(text: &str) -> Result<i64, LiteralError> {
    if text.eq_ignore_ascii_case("now") {
        return Ok(crate::clock::now_micros() / 1000);
    }
    if is_integer(text) {
        return text.parse().map_err(|_| {
            LiteralError::Value(format!("Unable to make long (for date) from: '{text}'"))
        });
    }
    parse_timestamp(text).ok_or_else(|| bad_timestamp(text))
}

fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn parse_timestamp(text: &str) -> Option<i64> {
    let (days, rest) = date_prefix(text)?;
    let (millis_of_day, rest) = match rest.strip_prefix([' ', 'T']) {
        Some(clock) if clock.starts_with(|c: char| c.is_ascii_digit()) => clock_prefix(clock)?,
        _ => (0, rest),
    };
    let offset_minutes = zone(rest.strip_prefix(' ').unwrap_or(rest))?;
    days.checked_mul(86_400_000)?
        .checked_add(millis_of_day)?
        .checked_sub(offset_minutes * 60_000)
}

/// `[-]yyyy-mm-dd` at the start of `text`: days since the epoch, and what follows.
fn date_prefix(text: &str) -> Option<(i64, &str)> {
    let (sign, body) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let (year, rest) = digits(body, 1, 9)?;
    let (month, rest) = digits(rest.strip_prefix('-')?, 1, 2)?;
    let (day, rest) = digits(rest.strip_prefix('-')?, 1, 2)?;
    let year = sign * year;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some((days_from_civil(year, month, day), rest))
}

/// `hh:mm[:ss[.fraction]]` at the start of `text`: milliseconds of the day, and the rest.
fn clock_prefix(text: &str) -> Option<(i64, &str)> {
    let (hours, rest) = digits(text, 1, 2)?;
    let (minutes, mut rest) = digits(rest.strip_prefix(':')?, 1, 2)?;
    let mut seconds = 0;
    let mut millis = 0;
    if let Some(after) = rest.strip_prefix(':') {
        (seconds, rest) = digits(after, 1, 2)?;
        if let Some(after) = rest.strip_prefix('.') {
            let len = after.bytes().take_while(u8::is_ascii_digit).count();
            if !(1..=9).contains(&len) {
                return None;
            }
            millis = format!("{:0<3}", &after[..len.min(3)]).parse().ok()?;
            rest = &after[len..];
        }
    }
    if hours > 23 || minutes > 59 || seconds > 59 {
        return None;
    }
    Some((
        ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis,
        rest,
    ))
}

/// A zone suffix as minutes east of UTC: empty (UTC), `Z`, `+hh`, `+hhmm`, `+hh:mm`, or
/// `UTC`/`GMT`/`UT` with an optional such offset.
fn zone(text: &str) -> Option<i64> {
    if text.is_empty() || text == "Z" {
        return Some(0);
    }
    let upper = text.to_ascii_uppercase();
    for name in ["UTC", "GMT", "UT"] {
        if let Some(offset) = upper.strip_prefix(name) {
            return match offset.is_empty() {
                true => Some(0),
                false => numeric_offset(offset, true),
            };
        }
    }
    numeric_offset(text, false)
}

/// `+hh`, `+hhmm` or `+hh:mm` (and, after a zone name, `+h` and `+h:mm`).
fn numeric_offset(text: &str, short_hours: bool) -> Option<i64> {
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let body = &text[1..];
    let (h, m) = match body.split_once(':') {
        Some((h, m)) if m.len() == 2 => (h, m),
        Some(_) => return None,
        None if body.len() == 4 => body.split_at(2),
        None => (body, "0"),
    };
    let hours_ok = h.len() == 2 || (short_hours && h.len() == 1);
    if !hours_ok || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 18 && m <= 59).then_some(sign * (h * 60 + m))
}

/// Between `min` and `max` leading digits of `text` as a number, and the rest.
fn digits(text: &str, min: usize, max: usize) -> Option<(i64, &str)> {
    let len = text.bytes().take_while(u8::is_ascii_digit).count();
    if len < min || len > max {
        return None;
    }
    Some((text[..len].parse().ok()?, &text[len..]))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since the epoch of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A `date` literal: `yyyy-mm-dd`, or the stored form itself (days as an unsigned integer
/// with the epoch at 2^31), as days with the epoch at 2^31.
pub fn date(text: &str) -> Result<u32, LiteralError> {
    if is_integer(text) {
        return text.parse::<u32>().map_err(|_| {
            LiteralError::Value(format!(
                "Unable to make unsigned int (for date) from: '{text}'"
            ))
        });
    }
    let days = match date_prefix(text) {
        Some((days, "")) => days,
        _ => {
            return Err(LiteralError::Value(format!(
                "Unable to coerce '{text}' to a formatted date (long)"
            )))
        }
    };
    u32::try_from(days + (1i64 << 31)).map_err(|_| {
        LiteralError::Value(format!(
            "Input date {text} is out of the range of supported dates"
        ))
    })
}

/// A `time` literal: `hh:mm[:ss[.fffffffff]]`, or nanoseconds since midnight written as an
/// integer, as nanoseconds since midnight.
pub fn time(text: &str) -> Result<i64, LiteralError> {
    let bad = || {
        LiteralError::Value(format!(
            "Unable to coerce '{text}' to a formatted time (long)"
        ))
    };
    if is_integer(text) {
        return text.parse().map_err(|_| bad());
    }
    let (clock, fraction) = text.split_once('.').unwrap_or((text, ""));
    let mut parts = clock.split(':');
    let mut field = |max: i64| -> Result<i64, LiteralError> {
        let v: i64 = parts.next().unwrap_or("0").parse().map_err(|_| bad())?;
        match (0..=max).contains(&v) {
            true => Ok(v),
            false => Err(bad()),
        }
    };
    let (h, m, s) = (field(23)?, field(59)?, field(59)?);
    if parts.next().is_some() || fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let nanos: i64 = format!("{fraction:0<9}").parse().map_err(|_| bad())?;
    Ok(((h * 60 + m) * 60 + s) * 1_000_000_000 + nanos)
}

/// A duration: months, days and nanoseconds, each with the literal's sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration {
    pub months: i32,
    pub days: i32,
    pub nanos: i64,
}

/// A `duration` literal.
pub fn duration(text: &str) -> Result<Duration, LiteralError> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let bad = || LiteralError::Value(format!("Unable to convert '{body}' to a duration"));
    let (months, days, nanos) = match body.strip_prefix(['P', 'p']) {
        Some(iso) => iso_duration(iso).ok_or_else(bad)?,
        None => unit_duration(body, &bad)?,
    };
    let total = |what: &str, value: i64, max: i64| {
        i32::try_from(value)
            .ok()
            .filter(|_| value <= max)
            .ok_or_else(|| {
                LiteralError::Value(format!(
                    "Invalid duration. The total number of {what} must be less or equal to {}",
                    i32::MAX
                ))
            })
    };
    let months = total("months", months, i64::from(i32::MAX))?;
    let days = total("days", days, i64::from(i32::MAX))?;
    let sign = if negative { -1 } else { 1 };
    Ok(Duration {
        months: sign * months,
        days: sign * days,
        nanos: i64::from(sign) * nanos,
    })
}

/// The units of the standard form, in the order they must appear: the text, the name
/// Cassandra's messages use, and what one is worth (months, days or nanoseconds).
const UNITS: [(&str, &str, Amount); 11] = [
    ("y", "years", Amount::Months(12)),
    ("mo", "months", Amount::Months(1)),
    ("w", "weeks", Amount::Days(7)),
    ("d", "days", Amount::Days(1)),
    ("h", "hours", Amount::Nanos(3_600_000_000_000)),
    ("m", "minutes", Amount::Nanos(60_000_000_000)),
    ("s", "seconds", Amount::Nanos(1_000_000_000)),
    ("ms", "milliseconds", Amount::Nanos(1_000_000)),
    ("us", "microseconds", Amount::Nanos(1_000)),
    ("µs", "microseconds", Amount::Nanos(1_000)),
    ("ns", "nanoseconds", Amount::Nanos(1)),
];

#[derive(Clone, Copy)]
enum Amount {
    Months(i64),
    Days(i64),
    Nanos(i64),
}

/// `1y2mo…10ns`: each unit once, larger units first.
fn unit_duration(
    text: &str,
    bad: &dyn Fn() -> LiteralError,
) -> Result<(i64, i64, i64), LiteralError> {
    let lower = text.to_lowercase();
    let mut rest = lower.as_str();
    let mut totals = [0i64; 3];
    let mut last: Option<usize> = None;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: i64 = rest[..len].parse().map_err(|_| bad())?;
        rest = &rest[len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let index = UNITS
            .iter()
            .position(|(u, _, _)| *u == unit)
            .ok_or_else(bad)?;
        // `us` and `µs` are one unit: compare by name.
        if let Some(previous) = last {
            let (name, previous_name) = (UNITS[index].1, UNITS[previous].1);
            if name == previous_name {
                return Err(invalid(format!("The {name} are specified multiple times")));
            }
            if index < previous {
                return Err(invalid(format!(
                    "The {previous_name} should be after {name}"
                )));
            }
        }
        last = Some(index);
        add(&mut totals, UNITS[index].2, n)?;
        rest = &rest[unit_len..];
    }
    Ok((totals[0], totals[1], totals[2]))
}

fn invalid(what: String) -> LiteralError {
    LiteralError::Value(format!("Invalid duration. {what}"))
}

/// Adds `n` units worth `amount` to the months, days and nanoseconds totals.
fn add(totals: &mut [i64; 3], amount: Amount, n: i64) -> Result<(), LiteralError> {
    let (slot, factor, what, max) = match amount {
        Amount::Months(f) => (0, f, "months", i64::from(i32::MAX)),
        Amount::Days(f) => (1, f, "days", i64::from(i32::MAX)),
        Amount::Nanos(f) => (2, f, "nanoseconds", i64::MAX),
    };
    let total = n
        .checked_mul(factor)
        .and_then(|v| totals[slot].checked_add(v))
        .filter(|v| *v <= max)
        .ok_or_else(|| {
            invalid(format!(
                "The total number of {what} must be less or equal to {max}"
            ))
        })?;
    totals[slot] = total;
    Ok(())
}

/// After the `P`: `nYnMnDTnHnMnS` (each part optional, in order), `nW`, or the alternative
/// `yyyy-mm-ddThh:mm:ss`.
fn iso_duration(text: &str) -> Option<(i64, i64, i64)> {
    let upper = text.to_ascii_uppercase();
    if let Some(alternative) = iso_alternative(&upper) {
        return Some(alternative);
    }
    if let Some(weeks) = upper.strip_suffix('W') {
        let (n, rest) = digits(weeks, 1, 18)?;
        return rest.is_empty().then_some((0, n.checked_mul(7)?, 0));
    }
    let (date, clock) = match upper.split_once('T') {
        Some((date, clock)) if !clock.is_empty() => (date, Some(clock)),
        Some(_) => return None,
        None => (upper.as_str(), None),
    };
    let [years, months, days] = designated(date, "YMD")?;
    let [hours, minutes, seconds] = designated(clock.unwrap_or(""), "HMS")?;
    let nanos = hours
        .checked_mul(3_600_000_000_000)?
        .checked_add(minutes.checked_mul(60_000_000_000)?)?
        .checked_add(seconds.checked_mul(1_000_000_000)?)?;
    Some((years.checked_mul(12)?.checked_add(months)?, days, nanos))
}

/// `(digits designator)*` with the designators in `order`, each at most once.
fn designated(text: &str, order: &str) -> Option<[i64; 3]> {
    let mut values = [0i64; 3];
    let mut allowed = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let (n, after) = digits(rest, 1, 18)?;
        let designator = after.chars().next()?;
        let at = order[allowed..].find(designator)? + allowed;
        values[at] = n;
        allowed = at + 1;
        rest = &after[1..];
    }
    Some(values)
}

/// `yyyy-mm-ddThh:mm:ss`, every field of fixed width.
fn iso_alternative(text: &str) -> Option<(i64, i64, i64)> {
    let b = text.as_bytes();
    let shape = b"0000-00-00T00:00:00";
    let fits = b.len() == shape.len()
        && b.iter().zip(shape).all(|(c, s)| match s {
            b'0' => c.is_ascii_digit(),
            other => c == other,
        });
    if !fits {
        return None;
    }
    let field = |at: usize, len: usize| text[at..at + len].parse::<i64>().ok();
    let (years, months, days) = (field(0, 4)?, field(5, 2)?, field(8, 2)?);
    let (hours, minutes, seconds) = (field(11, 2)?, field(14, 2)?, field(17, 2)?);
    let nanos = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000_000;
    Some((years * 12 + months, days, nanos))
}

#[cfg(test)]
mod tests {
    //! Cases from Cassandra's `TimestampSerializerTest`, `SimpleDateSerializerTest` and
    //! `DurationTest`.
    use super::*;

    const SECOND: i64 = 1000;
    const MINUTE: i64 = 60 * SECOND;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;

    fn ts(text: &str) -> i64 {
        timestamp(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn every_timestamp_pattern_cassandra_tries_parses() {
        for sep in [" ", "T"] {
            for (clock, ms) in [
                ("00:01", MINUTE),
                ("00:00:01", SECOND),
                ("00:00:00.100", 100),
            ] {
                let at = |zone: &str| ts(&format!("1970-01-01{sep}{clock}{zone}"));
                assert_eq!(at(""), ms);
                assert_eq!(at(" UTC"), ms);
                assert_eq!(at("Z"), ms);
                assert_eq!(at("+01"), ms - HOUR);
                assert_eq!(at("+0100"), ms - HOUR);
                assert_eq!(at("+01:00"), ms - HOUR);
                assert_eq!(at("-0200"), ms + 2 * HOUR);
                assert_eq!(at(" GMT-06:00"), ms + 6 * HOUR);
            }
        }
        assert_eq!(ts("1970-01-02"), DAY);
        assert_eq!(ts("1970-01-02 UTC"), DAY);
        assert_eq!(ts("1970-01-01+01"), -HOUR);
        assert_eq!(ts("1970-01-02+01:00"), DAY - HOUR);
        assert_eq!(ts("1970-01-01-0200"), 2 * HOUR);
        assert_eq!(ts("1970-01-01Z"), 0);
        assert_eq!(ts("2011-02-03T04:05:00.000+0000"), 1_296_705_900_000);
    }

    #[test]
    fn fractions_of_any_precision_and_integers_parse() {
        assert_eq!(ts("1970-01-01 00:00:00.10 UTC"), 100);
        assert_eq!(ts("1970-01-01 00:00:00.1+00"), 100);
        assert_eq!(ts("1970-01-01T00:00:00.10-0000"), 100);
        assert_eq!(ts("1970-01-01T00:00:00.123456789Z"), 123);
        assert_eq!(ts("1234567"), 1_234_567);
        assert_eq!(ts("-11234"), -11_234);
        let now = crate::clock::now_micros() / 1000;
        assert!((now..now + 5_000).contains(&ts("now")));
    }

    #[test]
    fn malformed_timestamps_get_cassandras_messages() {
        for text in [
            "1970-01-01 00:00:00andsomeextra",
            "prefix1970-01-01 00:00:00",
            "1970-01-01 00.56",
            "1970-01-0100:00:00",
            "1970-01-01 00:00:00-060",
            "1970-02-30",
            "1970-01-01 00:00:00 xentral Standard Time",
        ] {
            assert_eq!(
                timestamp(text).unwrap_err().to_string(),
                format!("Unable to coerce '{text}' to a formatted date (long)"),
            );
        }
        assert_eq!(
            timestamp("92233720368547758071").unwrap_err().to_string(),
            "Unable to make long (for date) from: '92233720368547758071'"
        );
    }

    #[test]
    fn dates_are_days_with_the_epoch_at_two_to_the_31() {
        let epoch = 1u32 << 31;
        assert_eq!(date("1970-01-01").unwrap(), epoch);
        assert_eq!(date("1970-01-02").unwrap(), epoch + 1);
        assert_eq!(date("1969-12-31").unwrap(), epoch - 1);
        // The raw form is the stored value itself.
        assert_eq!(date("2147483648").unwrap(), epoch);
        assert_eq!(date("0").unwrap(), 0);
        assert_eq!(date("4294967295").unwrap(), u32::MAX);
        assert_eq!(
            date("4294967296").unwrap_err().to_string(),
            "Unable to make unsigned int (for date) from: '4294967296'"
        );
        assert_eq!(
            date("-1").unwrap_err().to_string(),
            "Unable to make unsigned int (for date) from: '-1'"
        );
        assert_eq!(
            date("1970-13-01").unwrap_err().to_string(),
            "Unable to coerce '1970-13-01' to a formatted date (long)"
        );
    }

    fn d(months: i32, days: i32, nanos: i64) -> Duration {
        Duration {
            months,
            days,
            nanos,
        }
    }

    const NANOS_PER_HOUR: i64 = 3_600_000_000_000;
    const NANOS_PER_MINUTE: i64 = 60_000_000_000;

    #[test]
    fn durations_in_every_form_parse() {
        let cases = [
            ("1y2mo", d(14, 0, 0)),
            ("-1y2mo", d(-14, 0, 0)),
            ("1Y2MO", d(14, 0, 0)),
            ("2w", d(0, 14, 0)),
            ("2d10h", d(0, 2, 10 * NANOS_PER_HOUR)),
            (
                "30h20m",
                d(0, 0, 30 * NANOS_PER_HOUR + 20 * NANOS_PER_MINUTE),
            ),
            ("567ms", d(0, 0, 567_000_000)),
            ("1950us", d(0, 0, 1_950_000)),
            ("1950µs", d(0, 0, 1_950_000)),
            ("1950000NS", d(0, 0, 1_950_000)),
            ("1y3mo2h10m", d(15, 0, 130 * NANOS_PER_MINUTE)),
            ("P1Y2D", d(12, 2, 0)),
            ("P1Y2M", d(14, 0, 0)),
            ("P2W", d(0, 14, 0)),
            ("P1YT2H", d(12, 0, 2 * NANOS_PER_HOUR)),
            ("-P1Y2M", d(-14, 0, 0)),
            (
                "PT30H20M",
                d(0, 0, 30 * NANOS_PER_HOUR + 20 * NANOS_PER_MINUTE),
            ),
            ("PT56S", d(0, 0, 56_000_000_000)),
            ("P1Y3MT2H10M", d(15, 0, 130 * NANOS_PER_MINUTE)),
            ("P0001-00-02T00:00:00", d(12, 2, 0)),
            ("P0001-02-00T00:00:00", d(14, 0, 0)),
            ("-P0001-02-00T00:00:00", d(-14, 0, 0)),
            (
                "P0000-00-00T30:20:00",
                d(0, 0, 30 * NANOS_PER_HOUR + 20 * NANOS_PER_MINUTE),
            ),
            ("P0001-03-00T02:10:00", d(15, 0, 130 * NANOS_PER_MINUTE)),
        ];
        for (text, expected) in cases {
            assert_eq!(
                duration(text).unwrap_or_else(|e| panic!("{text}: {e}")),
                expected,
                "{text}"
            );
        }
    }

    #[test]
    fn invalid_durations_get_cassandras_messages() {
        let cases = [
            (
                format!("{}d", i64::MAX),
                "Invalid duration. The total number of days must be less or equal to 2147483647",
            ),
            ("2µ".to_owned(), "Unable to convert '2µ' to a duration"),
            ("-2µ".to_owned(), "Unable to convert '2µ' to a duration"),
            (
                "12.5s".to_owned(),
                "Unable to convert '12.5s' to a duration",
            ),
            (
                "2m-12s".to_owned(),
                "Unable to convert '2m-12s' to a duration",
            ),
            (
                "12s3s".to_owned(),
                "Invalid duration. The seconds are specified multiple times",
            ),
            (
                "1h1h".to_owned(),
                "Invalid duration. The hours are specified multiple times",
            ),
            (
                "12s3m".to_owned(),
                "Invalid duration. The seconds should be after minutes",
            ),
            (
                "1Y3M4D".to_owned(),
                "Invalid duration. The minutes should be after days",
            ),
            (
                "P2Y3W".to_owned(),
                "Unable to convert 'P2Y3W' to a duration",
            ),
            (
                "P0002-00-20".to_owned(),
                "Unable to convert 'P0002-00-20' to a duration",
            ),
            (
                "P1M1Y".to_owned(),
                "Unable to convert 'P1M1Y' to a duration",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(duration(&text).unwrap_err().to_string(), message, "{text}");
        }
    }
}
