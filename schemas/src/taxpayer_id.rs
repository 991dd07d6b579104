//! Taxpayer ids (纳税人识别号 / 税号).
//!
//! 18 characters: the unified social credit code of GB 32100-2015, checked with its check
//! character (weights and alphabet as in hutool's CreditCodeUtil, reference/domain-facts.md §2).
//! 15 and 20 characters: legacy tax registration numbers, accepted by format only.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::messages::Coded;

/// The 31-character alphabet of GB 32100-2015 (no I, O, S, V, Z).
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxNoError {
    #[error("taxpayer id is empty")]
    Empty,
    #[error("taxpayer id {0:?} has {1} characters; expected 15, 18 or 20")]
    Length(String, usize),
    #[error("taxpayer id {0:?} has characters outside the allowed set")]
    Format(String),
    #[error("taxpayer id {id:?}: check character is {found}, expected {expected}")]
    CheckCharacter { id: String, expected: char, found: char },
}

impl Coded for TaxNoError {
    fn code(&self) -> &'static str {
        match self {
            TaxNoError::Empty => "TAX_NO_EMPTY",
            TaxNoError::Length(..) => "TAX_NO_LENGTH",
            TaxNoError::Format(_) => "TAX_NO_FORMAT",
            TaxNoError::CheckCharacter { .. } => "TAX_NO_CHECK_CHARACTER",
        }
    }
    fn message_zh(&self) -> String {
        match self {
            TaxNoError::Empty => "纳税人识别号为空".into(),
            TaxNoError::Length(id, n) => format!("纳税人识别号{id}长度为{n}位，应为15、18或20位"),
            TaxNoError::Format(id) => format!("纳税人识别号{id}格式不正确"),
            TaxNoError::CheckCharacter { id, .. } => format!("纳税人识别号{id}校验位错误"),
        }
    }
}

/// A validated taxpayer id, upper-case, without surrounding spaces.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TaxNo(String);

impl TaxNo {
    pub fn parse(text: &str) -> Result<TaxNo, TaxNoError> {
        let id = text.trim().to_ascii_uppercase();
        let len = id.chars().count();
        match len {
            0 => Err(TaxNoError::Empty),
            18 => {
                let bytes = id.as_bytes();
                let in_alphabet = |b: &u8| USCC_ALPHABET.contains(b);
                // Registration authority and kind (2), region (6 digits), organization (10).
                if !(bytes.iter().all(in_alphabet) && bytes[2..8].iter().all(u8::is_ascii_digit)) {
                    return Err(TaxNoError::Format(id));
                }
                let expected = uscc_check_character(&id[..17]).ok_or(TaxNoError::Format(id.clone()))?;
                let found = bytes[17] as char;
                if expected != found {
                    return Err(TaxNoError::CheckCharacter { id, expected, found });
                }
                Ok(TaxNo(id))
            }
            15 | 20 => {
                if id.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) {
                    Ok(TaxNo(id))
                } else {
                    Err(TaxNoError::Format(id))
                }
            }
            n => Err(TaxNoError::Length(id, n)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The check character for the first 17 characters of a unified social credit code.
/// `None` if a character is outside the alphabet.
pub fn uscc_check_character(first17: &str) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (b, w) in first17.bytes().zip(USCC_WEIGHTS) {
        let index = USCC_ALPHABET.iter().position(|a| *a == b)? as u32;
        sum += index * w;
    }
    let c = (31 - sum % 31) % 31;
    Some(USCC_ALPHABET[c as usize] as char)
}

impl TryFrom<String> for TaxNo {
    type Error = TaxNoError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        TaxNo::parse(&s)
    }
}
impl From<TaxNo> for String {
    fn from(t: TaxNo) -> String {
        t.0
    }
}
impl fmt::Display for TaxNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl AsRef<str> for TaxNo {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_valid_codes_pass() {
        // Check characters worked by hand from the GB 32100-2015 weights.
        for id in ["91310000MA1FL2AB09", "92440300MA5DXY7K3W", "91110000600037341L"] {
            assert_eq!(TaxNo::parse(id).unwrap().as_str(), id);
        }
        // Lower case and spaces are normalized.
        assert_eq!(TaxNo::parse(" 91110000600037341l ").unwrap().as_str(), "91110000600037341L");
    }

    #[test]
    fn a_wrong_check_character_is_named() {
        let err = TaxNo::parse("91310000MA1FL2AB08").unwrap_err();
        assert_eq!(
            err,
            TaxNoError::CheckCharacter { id: "91310000MA1FL2AB08".into(), expected: '9', found: '8' }
        );
        assert_eq!(err.code(), "TAX_NO_CHECK_CHARACTER");
    }

    #[test]
    fn check_character_zero_when_remainder_is_zero() {
        // c = 31 − (Σ mod 31); when Σ mod 31 = 0 the character is '0', not out of range.
        let base = (0..31u32.pow(3))
            .map(|n| {
                let a = USCC_ALPHABET[(n % 31) as usize] as char;
                let b = USCC_ALPHABET[(n / 31 % 31) as usize] as char;
                let c = USCC_ALPHABET[(n / 961) as usize] as char;
                format!("91310000MA1FL2{a}{b}{c}")
            })
            .find(|s| uscc_check_character(s) == Some('0'))
            .expect("some code has check character 0");
        assert!(TaxNo::parse(&format!("{base}0")).is_ok());
    }

    #[test]
    fn formats_and_lengths() {
        assert!(matches!(TaxNo::parse(""), Err(TaxNoError::Empty)));
        assert!(matches!(TaxNo::parse("1234"), Err(TaxNoError::Length(_, 4))));
        // I, O, S, V, Z are not in the alphabet; region must be digits.
        assert!(matches!(TaxNo::parse("91310000MA1FL2AB0I"), Err(TaxNoError::Format(_))));
        assert!(matches!(TaxNo::parse("9131000AMA1FL2AB09"), Err(TaxNoError::Format(_))));
        // Legacy ids by format only.
        assert!(TaxNo::parse("110108123456789").is_ok());
        assert!(TaxNo::parse("11010819800101123X01").is_ok());
        assert!(matches!(TaxNo::parse("11010812345678-"), Err(TaxNoError::Format(_))));
    }

    proptest! {
        #[test]
        fn every_generated_code_validates_and_any_other_check_character_fails(
            body in "[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{9}",
            other in 0usize..31,
        ) {
            let check = uscc_check_character(&body).unwrap();
            let valid = format!("{body}{check}");
            prop_assert!(TaxNo::parse(&valid).is_ok());
            let wrong = USCC_ALPHABET[other] as char;
            prop_assume!(wrong != check);
            let invalid = format!("{body}{wrong}");
            let is_check_error = matches!(TaxNo::parse(&invalid), Err(TaxNoError::CheckCharacter { .. }));
            prop_assert!(is_check_error);
        }
    }
}
