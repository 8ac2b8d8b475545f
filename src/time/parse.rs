//! Parsing durations from text (`1h30m`, `2.5s`): fault plans, the CLI
//! and environment settings share one parser.

use std::time::Duration;

/// Parses a duration: a number and a unit (`2.5s`, `250ms`, `10us`,
/// `5ns`, `1m`, `1h`), or several, largest unit first (`1h30m`, `1m30.5s`,
/// `2s500ms`). Units: `ns`, `us` (or `µs`), `ms`, `s`, `m` (or `min`),
/// `h`. Exact to the nanosecond: no floating point.
///
/// ```
/// use lockstep::time::{Duration, parse_duration};
///
/// assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
/// assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert_eq!(parse_duration("2s500ms"), Ok(Duration::from_millis(2500)));
/// assert!(parse_duration("30m1h").unwrap_err().contains("largest unit first"));
/// ```
///
/// # Errors
///
/// A one-line message naming the input and what is accepted.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const UNITS: &str = "ns, us, ms, s, m, h";
    let bad = || {
        format!(
            "`{s}` is not a duration (expected a number and a unit, or several largest \
             first: `2.5s`, `250ms`, `1m`, `1h30m`; units: {UNITS})"
        )
    };
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    let mut last_scale = u128::MAX;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" | "min" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        if scale >= last_scale {
            return Err(format!(
                "`{s}` is not a duration: write its parts largest unit first, each once \
                 (`1h30m`, `1m30s`)"
            ));
        }
        last_scale = scale;
        total = total
            .checked_add(parse_part(s, num, scale, &bad)?)
            .ok_or_else(bad)?;
        rest = tail;
    }
    u64::try_from(total)
        .map(Duration::from_nanos)
        .map_err(|_| format!("`{s}` is too long (at most about 584 years)"))
}

/// `num` (digits, maybe a fraction) times `scale` nanoseconds, exactly.
fn parse_part(s: &str, num: &str, scale: u128, bad: &impl Fn() -> String) -> Result<u128, String> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let mut nanos = int.checked_mul(scale).ok_or_else(bad)?;
    let mut place = scale;
    for c in frac.chars() {
        let d = c.to_digit(10).ok_or_else(bad)? as u128;
        place /= 10;
        if place == 0 && d != 0 {
            return Err(format!("`{s}` is finer than a nanosecond"));
        }
        nanos += d * place;
    }
    Ok(nanos)
}
