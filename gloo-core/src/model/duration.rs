//! `google.protobuf.Duration` in its proto3 JSON form (`"1.5s"`, `"0.001s"`, `"30s"`).

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A protobuf `Duration`, written in YAML/JSON the way Gloo's protos expect: a decimal number
/// of seconds followed by `s` (`"1s"`, `"0.250s"`, `"1.000000001s"`).
///
/// ```
/// use gloo_core::model::Duration;
/// let d: Duration = serde_json::from_str("\"1.5s\"").unwrap();
/// assert_eq!(d.as_std(), std::time::Duration::from_millis(1500));
/// assert_eq!(serde_json::to_string(&d).unwrap(), "\"1.500s\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    /// Whole seconds.
    pub seconds: i64,
    /// Nanoseconds, `0..1_000_000_000`, same sign as `seconds`.
    pub nanos: i32,
}

impl Duration {
    /// A duration of whole seconds.
    pub const fn from_secs(seconds: i64) -> Self {
        Duration { seconds, nanos: 0 }
    }

    /// A duration of milliseconds.
    pub const fn from_millis(millis: i64) -> Self {
        Duration {
            seconds: millis / 1000,
            nanos: ((millis % 1000) * 1_000_000) as i32,
        }
    }

    /// This duration as a [`std::time::Duration`]; negative durations become zero.
    pub fn as_std(&self) -> std::time::Duration {
        if self.seconds < 0 || self.nanos < 0 {
            return std::time::Duration::ZERO;
        }
        std::time::Duration::new(self.seconds as u64, self.nanos as u32)
    }

    /// Parses the proto3 JSON form, `<seconds>[.<fraction>]s`.
    ///
    /// ```
    /// use gloo_core::model::Duration;
    /// assert_eq!(Duration::parse("2s").unwrap(), Duration::from_secs(2));
    /// assert!(Duration::parse("2 minutes").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || {
            format!("invalid duration {text:?}: expected seconds with an `s` suffix, like \"1.5s\"")
        };
        let body = text.trim().strip_suffix('s').ok_or_else(invalid)?;
        let (negative, body) = match body.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, body),
        };
        let (whole, fraction) = match body.split_once('.') {
            Some((w, f)) => (w, f),
            None => (body, ""),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(whole) || !all_digits(fraction) || fraction.len() > 9 {
            return Err(invalid());
        }
        let seconds: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        if seconds > 315_576_000_000 {
            return Err(format!("duration {text:?} is longer than 10,000 years"));
        }
        let mut nanos: i32 = 0;
        if !fraction.is_empty() {
            let padded = format!("{fraction:0<9}");
            nanos = padded.parse().map_err(|_| invalid())?;
        }
        Ok(if negative {
            Duration {
                seconds: -seconds,
                nanos: -nanos,
            }
        } else {
            Duration { seconds, nanos }
        })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let negative = self.seconds < 0 || self.nanos < 0;
        let (s, n) = (self.seconds.unsigned_abs(), self.nanos.unsigned_abs());
        let sign = if negative { "-" } else { "" };
        if n == 0 {
            write!(f, "{sign}{s}s")
        } else if n % 1_000_000 == 0 {
            write!(f, "{sign}{s}.{:03}s", n / 1_000_000)
        } else if n % 1_000 == 0 {
            write!(f, "{sign}{s}.{:06}s", n / 1_000)
        } else {
            write!(f, "{sign}{s}.{n:09}s")
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string like \"1.5s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_proto_json_durations() {
        for (text, secs, nanos, printed) in [
            ("1s", 1, 0, "1s"),
            ("0.5s", 0, 500_000_000, "0.500s"),
            ("1.000000001s", 1, 1, "1.000000001s"),
            (".25s", 0, 250_000_000, "0.250s"),
            ("-1.5s", -1, -500_000_000, "-1.500s"),
            ("0.000002s", 0, 2_000, "0.000002s"),
        ] {
            let d = Duration::parse(text).unwrap();
            assert_eq!((d.seconds, d.nanos), (secs, nanos), "{text}");
            assert_eq!(d.to_string(), printed);
        }
    }

    #[test]
    fn rejects_malformed_durations() {
        for bad in [
            "",
            "s",
            "1",
            "1m",
            "1.0000000001s",
            "abc s",
            "1.2.3s",
            "99999999999999s",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad:?} should fail");
        }
    }
}
