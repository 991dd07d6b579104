//! How the envelope's `data` is encoded: Base64(JSON), or Base64(IV ‖ AES-128-GCM ciphertext ‖ tag)
//! with key = the first 16 bytes of SHA1(SHA1(password)) — what Java's SHA1PRNG seeded with the
//! password yields (reference/domain-facts.md §1, jellyfrank's codec; a single SHA1 is wrong).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use sha1::{Digest, Sha1};

const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("data is not valid Base64")]
    Base64,
    #[error("data could not be decrypted (wrong password or tampered)")]
    Decrypt,
    #[error("data is too short to hold an IV and a tag")]
    TooShort,
    #[error("data is not UTF-8 JSON text")]
    Utf8,
}

/// The envelope's data encoding, with the key already derived.
#[derive(Clone)]
pub enum Codec {
    Base64,
    Aes(Box<Aes128Gcm>),
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Codec::Base64 => "Codec::Base64",
            Codec::Aes(_) => "Codec::Aes(******)",
        })
    }
}

/// The AES key: the first 16 bytes of SHA1(SHA1(password)).
pub fn derive_key(password: &str) -> [u8; 16] {
    let once = Sha1::digest(password.as_bytes());
    let twice = Sha1::digest(once);
    let mut key = [0u8; 16];
    key.copy_from_slice(&twice[..16]);
    key
}

impl Codec {
    pub fn aes(password: &str) -> Codec {
        Codec::Aes(Box::new(Aes128Gcm::new(&derive_key(password).into())))
    }

    pub fn encode(&self, json: &str) -> String {
        match self {
            Codec::Base64 => B64.encode(json.as_bytes()),
            Codec::Aes(cipher) => {
                let mut iv = [0u8; IV_LEN];
                rand::rng().fill_bytes(&mut iv);
                B64.encode(seal(cipher, &iv, json.as_bytes()))
            }
        }
    }

    pub fn decode(&self, data: &str) -> Result<String, CodecError> {
        let bytes = B64.decode(data.trim()).map_err(|_| CodecError::Base64)?;
        let plain = match self {
            Codec::Base64 => bytes,
            Codec::Aes(cipher) => {
                if bytes.len() < IV_LEN + TAG_LEN {
                    return Err(CodecError::TooShort);
                }
                let (iv, sealed) = bytes.split_at(IV_LEN);
                let iv: [u8; IV_LEN] = iv.try_into().expect("split at IV_LEN");
                cipher.decrypt(&Nonce::from(iv), sealed).map_err(|_| CodecError::Decrypt)?
            }
        };
        String::from_utf8(plain).map_err(|_| CodecError::Utf8)
    }
}

/// IV ‖ ciphertext ‖ tag (aes-gcm appends the tag to the ciphertext).
fn seal(cipher: &Aes128Gcm, iv: &[u8; IV_LEN], plain: &[u8]) -> Vec<u8> {
    let sealed = cipher.encrypt(&Nonce::from(*iv), plain).expect("AES-GCM encryption of in-memory data");
    [iv.as_slice(), &sealed].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn key_is_sha1_of_sha1_truncated() {
        // SHA1("password") = 5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8;
        // SHA1 of those 20 bytes, first 16 bytes (computed independently with Python's hashlib).
        assert_eq!(hex(&derive_key("password")), "2470c0c06dee42fd1618bb99005adca2");
    }

    #[test]
    fn aes_gcm_core_matches_the_gcm_specification() {
        // McGrew & Viega, "The Galois/Counter Mode of Operation", test case 2: K = 0, IV = 0, P = 0^128.
        let cipher = Aes128Gcm::new(&[0u8; 16].into());
        let wire = seal(&cipher, &[0u8; IV_LEN], &[0u8; 16]);
        assert_eq!(hex(&wire[IV_LEN..IV_LEN + 16]), "0388dace60b6a392f328c2b971b2fe78");
        assert_eq!(hex(&wire[IV_LEN + 16..]), "ab6e47d42cec13bdf53a67b21257bddf");
    }

    #[test]
    fn known_answer_for_the_envelope_encoding() {
        // Password "fapiao-test", IV 000102…0b, plaintext {"a":1}; the expected wire was produced
        // independently with Python's `cryptography` AESGCM and hashlib.
        let key = derive_key("fapiao-test");
        let cipher = Aes128Gcm::new(&key.into());
        let iv: [u8; 12] = core::array::from_fn(|i| i as u8);
        let wire = B64.encode(seal(&cipher, &iv, br#"{"a":1}"#));
        assert_eq!(wire, KNOWN_WIRE);
        assert_eq!(Codec::aes("fapiao-test").decode(KNOWN_WIRE).unwrap(), r#"{"a":1}"#);
    }
    const KNOWN_WIRE: &str = "AAECAwQFBgcICQoLIbbktCM9srIQVJANfWVzXvop4Hiakvg=";

    #[test]
    fn round_trips_and_refuses_a_wrong_password() {
        let json = r#"{"serialNo":"S1","buyerName":"购方"}"#;
        let aes = Codec::aes("secret");
        let wire = aes.encode(json);
        assert_eq!(aes.decode(&wire).unwrap(), json);
        assert_eq!(Codec::aes("other").decode(&wire), Err(CodecError::Decrypt));
        assert_eq!(Codec::Base64.decode(&Codec::Base64.encode(json)).unwrap(), json);
        assert_eq!(Codec::Base64.decode("%%%"), Err(CodecError::Base64));
    }
}
