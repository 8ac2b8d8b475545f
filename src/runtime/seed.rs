//! Seeds: a `u64`, printed as `0x…` hex, parsed from hex or decimal.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The seed of a run. Prints as `0x1a7`; parses from `0x1a7`, `0X1A7`,
/// `423` or `1_000` (underscores are ignored).
///
/// ```
/// use lockstep::Seed;
///
/// let seed: Seed = "0x1a7".parse().unwrap();
/// assert_eq!(seed, Seed(423));
/// assert_eq!(seed.to_string(), "0x1a7");
/// assert_eq!("423".parse::<Seed>().unwrap(), seed);
/// assert!("0xnope".parse::<Seed>().is_err());
/// ```
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seed(pub u64);

impl Seed {
    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for Seed {
    fn from(n: u64) -> Seed {
        Seed(n)
    }
}

impl From<Seed> for u64 {
    fn from(s: Seed) -> u64 {
        s.0
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{:#x}", self.0))
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seed({:#x})", self.0)
    }
}

/// A seed that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedParseError {
    input: String,
    reason: &'static str,
}

impl fmt::Display for SeedParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid seed `{}`: {}; a seed is a 64-bit unsigned integer, in hex with a 0x \
             prefix (0x1a7) or in decimal (423)",
            self.input, self.reason
        )
    }
}

impl std::error::Error for SeedParseError {}

impl FromStr for Seed {
    type Err = SeedParseError;

    fn from_str(s: &str) -> Result<Seed, SeedParseError> {
        let err = |reason| SeedParseError {
            input: s.to_string(),
            reason,
        };
        let t: String = s.trim().chars().filter(|&c| c != '_').collect();
        if t.is_empty() {
            return Err(err("it is empty"));
        }
        let (digits, radix) = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) => (hex, 16),
            None => (t.as_str(), 10),
        };
        if digits.is_empty() {
            return Err(err("no digits follow 0x"));
        }
        if !digits.chars().all(|c| c.is_digit(radix)) {
            return Err(err(if radix == 16 {
                "it has a character that is not a hex digit"
            } else {
                "it has a character that is not a decimal digit (hex needs a 0x prefix)"
            }));
        }
        u64::from_str_radix(digits, radix)
            .map(Seed)
            .map_err(|_| err("it does not fit in 64 bits"))
    }
}
