//! Value types shared by requests and responses, shaped like the AWS KMS API
//! (field names serialize in PascalCase, as the AWS CLI prints them).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// The encryption context: string pairs bound to a ciphertext as associated
/// data. A `BTreeMap` so iteration is sorted by key bytes.
pub type EncryptionContext = BTreeMap<String, String>;

/// Seconds since the Unix epoch. JSON shows ISO 8601 like the AWS CLI v2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const DAY: u64 = 86_400;

    pub fn plus_days(self, days: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(days.saturating_mul(Self::DAY)))
    }

    /// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS` with an optional
    /// fraction and `Z` or `+00:00`: UTC only, as kmsd writes it.
    pub fn parse_iso8601(s: &str) -> Option<Timestamp> {
        let (date, time) = match s.split_once('T') {
            Some((d, t)) => (d, Some(t)),
            None => (s, None),
        };
        let mut dp = date.splitn(3, '-');
        let y: i64 = dp.next()?.parse().ok()?;
        let m: u32 = dp.next()?.parse().ok()?;
        let d: u32 = dp.next()?.parse().ok()?;
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            return None;
        }
        let mut secs = 0u64;
        if let Some(t) = time {
            let t = t
                .strip_suffix('Z')
                .or_else(|| t.strip_suffix("+00:00"))
                .unwrap_or(t);
            let t = t.split('.').next()?;
            let mut tp = t.splitn(3, ':');
            let h: u64 = tp.next()?.parse().ok()?;
            let mi: u64 = tp.next()?.parse().ok()?;
            let se: u64 = tp.next().unwrap_or("0").parse().ok()?;
            if h > 23 || mi > 59 || se > 60 {
                return None;
            }
            secs = h * 3600 + mi * 60 + se;
        }
        let days = days_from_civil(y, m, d);
        u64::try_from(days)
            .ok()
            .map(|d| Timestamp(d * 86_400 + secs))
    }

    /// `YYYY-MM-DDTHH:MM:SS+00:00`.
    pub fn iso8601(self) -> String {
        let days = (self.0 / 86_400) as i64;
        let secs = self.0 % 86_400;
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.iso8601())
        } else {
            s.serialize_u64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Repr {
                Secs(u64),
                Iso(String),
            }
            match Repr::deserialize(d)? {
                Repr::Secs(s) => Ok(Timestamp(s)),
                Repr::Iso(s) => Timestamp::parse_iso8601(&s)
                    .ok_or_else(|| serde::de::Error::custom(format!("not a timestamp: {s}"))),
            }
        } else {
            u64::deserialize(d).map(Timestamp)
        }
    }
}

/// Proleptic Gregorian date to days since 1970-01-01 (inverse of
/// `civil_from_days`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

macro_rules! aws_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $s)] $variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),* }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok($name::$variant),)*
                    _ => Err(format!(
                        "'{s}' is not a valid {}; expected one of: {}",
                        stringify!($name),
                        [$($s),*].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

aws_enum!(
    /// The lifecycle state of a KMS key.
    KeyState {
        Enabled => "Enabled",
        Disabled => "Disabled",
        PendingDeletion => "PendingDeletion",
    }
);

aws_enum!(KeySpec { SymmetricDefault => "SYMMETRIC_DEFAULT" });

aws_enum!(KeyUsage { EncryptDecrypt => "ENCRYPT_DECRYPT" });

aws_enum!(DataKeySpec { Aes256 => "AES_256", Aes128 => "AES_128" });

aws_enum!(RotationType { Automatic => "AUTOMATIC", OnDemand => "ON_DEMAND" });

impl DataKeySpec {
    pub fn key_len(self) -> usize {
        match self {
            DataKeySpec::Aes256 => 32,
            DataKeySpec::Aes128 => 16,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub tag_key: String,
    pub tag_value: String,
}

/// DescribeKey's `KeyMetadata`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyMetadata {
    #[serde(rename = "AWSAccountId")]
    pub aws_account_id: String,
    pub key_id: String,
    pub arn: String,
    pub creation_date: Timestamp,
    pub enabled: bool,
    pub description: String,
    pub key_usage: KeyUsage,
    pub key_state: KeyState,
    pub deletion_date: Option<Timestamp>,
    pub pending_deletion_window_in_days: Option<u32>,
    pub origin: String,
    pub key_manager: String,
    pub key_spec: KeySpec,
    pub encryption_algorithms: Vec<String>,
    pub multi_region: bool,
    /// The version new ciphertexts are made with (1 until the first rotation).
    pub current_key_version: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyListEntry {
    pub key_id: String,
    pub key_arn: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasListEntry {
    pub alias_name: String,
    pub alias_arn: String,
    pub target_key_id: Option<String>,
    pub creation_date: Timestamp,
    pub last_updated_date: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationListEntry {
    pub key_id: String,
    pub rotation_date: Timestamp,
    pub rotation_type: RotationType,
    /// The key version the rotation created.
    pub key_version: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_known_dates() {
        assert_eq!(Timestamp(0).iso8601(), "1970-01-01T00:00:00+00:00");
        assert_eq!(
            Timestamp(951_782_400).iso8601(),
            "2000-02-29T00:00:00+00:00"
        );
        assert_eq!(
            Timestamp(1_700_000_000).iso8601(),
            "2023-11-14T22:13:20+00:00"
        );
        assert_eq!(Timestamp(0).plus_days(7).0, 7 * 86_400);
        for t in [0, 951_782_400, 1_700_000_000, 4_102_444_799] {
            assert_eq!(
                Timestamp::parse_iso8601(&Timestamp(t).iso8601()),
                Some(Timestamp(t))
            );
        }
        assert_eq!(
            Timestamp::parse_iso8601("2023-11-14"),
            Some(Timestamp(1_699_920_000))
        );
        assert_eq!(
            Timestamp::parse_iso8601("2023-11-14T22:13:20.5Z"),
            Some(Timestamp(1_700_000_000))
        );
        assert_eq!(Timestamp::parse_iso8601("2023-13-01"), None);
        assert_eq!(Timestamp::parse_iso8601("yesterday"), None);
        let j = serde_json::to_string(&Timestamp(1_700_000_000)).unwrap();
        assert_eq!(
            serde_json::from_str::<Timestamp>(&j).unwrap(),
            Timestamp(1_700_000_000)
        );
        assert_eq!(
            serde_json::from_str::<Timestamp>("12").unwrap(),
            Timestamp(12)
        );
    }

    #[test]
    fn enums_parse_their_aws_names() {
        assert_eq!("AES_128".parse::<DataKeySpec>(), Ok(DataKeySpec::Aes128));
        assert!(
            "AES_512"
                .parse::<DataKeySpec>()
                .unwrap_err()
                .contains("AES_256")
        );
        assert_eq!(
            serde_json::to_string(&KeyState::PendingDeletion).unwrap(),
            "\"PendingDeletion\""
        );
        assert_eq!(DataKeySpec::Aes128.key_len(), 16);
    }
}
