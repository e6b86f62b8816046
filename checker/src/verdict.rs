//! Tri-state verdicts and how they compose.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a checker that was given no client operation says `unknown`: an empty
/// history proves nothing (Elle's verdict for an empty transaction graph).
pub const NO_OPERATIONS: &str =
    "no operations: the history has no client operation, so there was nothing to check";

/// Whether a history satisfies a checker: valid, invalid, or unknown (a budget
/// ran out, or the checker could not decide).
///
/// Serialized as Jepsen does: `true`, `false` or `"unknown"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Validity {
    /// The history satisfies it.
    Valid,
    /// Unknown; never better than valid, never worse than invalid.
    Unknown,
    /// The history violates it.
    Invalid,
}

impl Validity {
    /// The worse of two verdicts: invalid > unknown > valid.
    pub fn and(self, other: Validity) -> Validity {
        self.max(other)
    }

    /// The process exit code of docs/DESIGN.md's shared vocabulary: 0, 1 or 2.
    pub fn exit_code(self) -> i32 {
        match self {
            Validity::Valid => 0,
            Validity::Invalid => 1,
            Validity::Unknown => 2,
        }
    }

    fn rank(self) -> u8 {
        match self {
            Validity::Valid => 0,
            Validity::Unknown => 1,
            Validity::Invalid => 2,
        }
    }
}

impl PartialOrd for Validity {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Validity {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl fmt::Display for Validity {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Validity::Valid => "valid",
            Validity::Invalid => "invalid",
            Validity::Unknown => "unknown",
        })
    }
}

impl Serialize for Validity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Validity::Valid => s.serialize_bool(true),
            Validity::Invalid => s.serialize_bool(false),
            Validity::Unknown => s.serialize_str("unknown"),
        }
    }
}

impl<'de> Deserialize<'de> for Validity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(true) => Ok(Validity::Valid),
            serde_json::Value::Bool(false) => Ok(Validity::Invalid),
            serde_json::Value::String(s) if s == "unknown" => Ok(Validity::Unknown),
            other => Err(serde::de::Error::custom(format!(
                "validity is true, false or \"unknown\", not {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composing_takes_the_worst() {
        use Validity::*;
        assert_eq!(Valid.and(Unknown), Unknown);
        assert_eq!(Unknown.and(Invalid), Invalid);
        assert_eq!(Valid.and(Valid), Valid);
        assert_eq!(serde_json::to_string(&Unknown).unwrap(), "\"unknown\"");
        assert_eq!(serde_json::from_str::<Validity>("false").unwrap(), Invalid);
    }
}
