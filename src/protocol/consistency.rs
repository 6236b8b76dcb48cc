//! Consistency levels (spec §3, `[consistency]`).

use super::error::ProtocolError;

/// A consistency level with its wire code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[repr(u16)]
pub enum Consistency {
    Any = 0x0000,
    One = 0x0001,
    Two = 0x0002,
    Three = 0x0003,
    Quorum = 0x0004,
    All = 0x0005,
    LocalQuorum = 0x0006,
    EachQuorum = 0x0007,
    Serial = 0x0008,
    LocalSerial = 0x0009,
    LocalOne = 0x000A,
}

impl TryFrom<u16> for Consistency {
    type Error = ProtocolError;

    fn try_from(code: u16) -> Result<Self, ProtocolError> {
        use Consistency::*;
        Ok(match code {
            0x0000 => Any,
            0x0001 => One,
            0x0002 => Two,
            0x0003 => Three,
            0x0004 => Quorum,
            0x0005 => All,
            0x0006 => LocalQuorum,
            0x0007 => EachQuorum,
            0x0008 => Serial,
            0x0009 => LocalSerial,
            0x000A => LocalOne,
            other => return Err(ProtocolError::BadConsistency(other)),
        })
    }
}

impl Consistency {
    /// The level named `name` (`one`, `LOCAL_QUORUM` ...), as [`Consistency::name`] spells
    /// it, in any case.
    pub fn from_name(name: &str) -> Option<Consistency> {
        (0..=0x000A)
            .filter_map(|code| Consistency::try_from(code).ok())
            .find(|level| level.name().eq_ignore_ascii_case(name))
    }

    /// The name Cassandra prints in error messages (`LOCAL_QUORUM`).
    pub fn name(self) -> &'static str {
        use Consistency::*;
        match self {
            Any => "ANY",
            One => "ONE",
            Two => "TWO",
            Three => "THREE",
            Quorum => "QUORUM",
            All => "ALL",
            LocalQuorum => "LOCAL_QUORUM",
            EachQuorum => "EACH_QUORUM",
            Serial => "SERIAL",
            LocalSerial => "LOCAL_SERIAL",
            LocalOne => "LOCAL_ONE",
        }
    }
}
