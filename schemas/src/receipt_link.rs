//! The link printed in a receipt's QR code (动态小票码, seed 003; SPEC.md "Dynamic receipt
//! codes"), as pure rules: what is signed, how, and how a link is read and checked.
//!
//! **Our format (mode 1 and printed codes)**: `{base}/r?s=SELLER&o=ORDER&je=AMOUNT&ts=MS&exp=MS&kid=KEY&sig=HEX`
//! — seller tax number, order (receipt serial) number, amount with two decimals, issue and
//! expiry times in Unix milliseconds, the key id, and `sig` = lowercase hex of
//! HMAC-SHA256(key, `fapiao-receipt-v1\n` + the six fields joined by `\n`). Verified with the
//! MAC's constant-time comparison (`verify_slice`); valid while `now < exp`.
//!
//! **The documented Kingdee format** (domain-facts, [KD-DOC] 3.1.01): `?k=key,ddh,je,timestamps,md5,$`
//! with md5 = MD5(reverse(key+key)). The digest depends on the key alone, which the link itself
//! carries, so anyone who has seen one link can forge any order and amount: accepted only where
//! an enterprise turns compatibility on.

use std::collections::HashMap;

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use rust_decimal::Decimal;
use sha2::Sha256;

/// Domain separation: a signature of anything else never verifies as a link.
const CONTEXT: &str = "fapiao-receipt-v1";

/// The signed fields of one link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkFields {
    pub seller_tax_no: String,
    pub order_no: String,
    /// 价税合计 of the order, two decimals.
    pub amount: Decimal,
    pub issued_at_ms: i64,
    pub expires_at_ms: i64,
    pub key_id: String,
}

/// A link as read from its query: our signed format, or the Kingdee one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    Signed { fields: LinkFields, sig: String },
    Kingdee { key: String, order_no: String, amount: Decimal, timestamp_ms: i64, md5: String },
}

impl Link {
    pub fn order_no(&self) -> &str {
        match self {
            Link::Signed { fields, .. } => &fields.order_no,
            Link::Kingdee { order_no, .. } => order_no,
        }
    }

    pub fn amount(&self) -> Decimal {
        match self {
            Link::Signed { fields, .. } => fields.amount,
            Link::Kingdee { amount, .. } => *amount,
        }
    }
}

/// Why a link is refused. The consumer sees the Chinese message; the code is stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkRefusal {
    /// Not a link of ours: a field missing or malformed, an unknown seller or key id, the
    /// Kingdee format where compatibility is off.
    Unknown,
    /// The signature does not match the fields.
    Tampered,
    /// Past its expiry.
    Expired,
    /// The receipt code was disabled (or the seller turned the mode off).
    Disabled,
    /// The merchant's order query does not know the order (or there is no stored code).
    UnknownOrder,
    /// The order's amount is not the link's.
    AmountDiffers,
}

impl LinkRefusal {
    pub fn code(self) -> &'static str {
        match self {
            LinkRefusal::Unknown => "RECEIPT_LINK_UNKNOWN",
            LinkRefusal::Tampered => "RECEIPT_LINK_TAMPERED",
            LinkRefusal::Expired => "RECEIPT_LINK_EXPIRED",
            LinkRefusal::Disabled => "RECEIPT_CODE_DISABLED",
            LinkRefusal::UnknownOrder => "RECEIPT_ORDER_UNKNOWN",
            LinkRefusal::AmountDiffers => "RECEIPT_AMOUNT_DIFFERS",
        }
    }

    pub fn message_zh(self) -> &'static str {
        match self {
            LinkRefusal::Unknown => "无法识别的开票二维码，请向商家索取新的小票",
            LinkRefusal::Tampered => "开票二维码校验失败，链接可能被篡改",
            LinkRefusal::Expired => "开票二维码已过有效期，请联系商家",
            LinkRefusal::Disabled => "该小票码已被商家禁用",
            LinkRefusal::UnknownOrder => "商家未查询到该订单",
            LinkRefusal::AmountDiffers => "订单金额与小票金额不一致",
        }
    }

    pub fn from_code(code: &str) -> Option<LinkRefusal> {
        [
            LinkRefusal::Unknown,
            LinkRefusal::Tampered,
            LinkRefusal::Expired,
            LinkRefusal::Disabled,
            LinkRefusal::UnknownOrder,
            LinkRefusal::AmountDiffers,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }
}

/// An order or receipt serial number: what may appear in a link and a bill number.
pub fn valid_order_no(s: &str) -> bool {
    (1..=50).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn valid_key_id(s: &str) -> bool {
    (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The bytes the MAC covers. Fields cannot hold a newline (each is checked on the way in).
fn message(f: &LinkFields) -> String {
    format!(
        "{CONTEXT}\n{}\n{}\n{}\n{}\n{}\n{}",
        f.seller_tax_no,
        f.order_no,
        amount_text(f.amount),
        f.issued_at_ms,
        f.expires_at_ms,
        f.key_id
    )
}

/// An amount as links carry it: two decimals, no sign for positives (`106.00`).
pub fn amount_text(amount: Decimal) -> String {
    let mut a = amount;
    a.rescale(2);
    a.to_string()
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// The lowercase hex HMAC-SHA256 of the fields.
pub fn sign(key: &[u8], fields: &LinkFields) -> String {
    let mut m = mac(key);
    m.update(message(fields).as_bytes());
    hex(&m.finalize().into_bytes())
}

/// The query of a signed link (after `?`).
pub fn query(fields: &LinkFields, sig: &str) -> String {
    format!(
        "s={}&o={}&je={}&ts={}&exp={}&kid={}&sig={}",
        fields.seller_tax_no,
        fields.order_no,
        amount_text(fields.amount),
        fields.issued_at_ms,
        fields.expires_at_ms,
        fields.key_id,
        sig
    )
}

/// The signature matches the fields under `key` (constant-time: the MAC's own `verify_slice`),
/// and the link has not expired at `now_ms`. Signature first: an expired forgery is a forgery.
pub fn verify(key: &[u8], fields: &LinkFields, sig: &str, now_ms: i64) -> Result<(), LinkRefusal> {
    let Some(sig) = unhex(sig) else { return Err(LinkRefusal::Tampered) };
    let mut m = mac(key);
    m.update(message(fields).as_bytes());
    m.verify_slice(&sig).map_err(|_| LinkRefusal::Tampered)?;
    if now_ms >= fields.expires_at_ms {
        return Err(LinkRefusal::Expired);
    }
    Ok(())
}

/// The Kingdee digest: MD5 of the reversed `key+key`, lowercase hex.
pub fn kingdee_md5(key: &str) -> String {
    let doubled: String = format!("{key}{key}").chars().rev().collect();
    hex(&Md5::digest(doubled.as_bytes()))
}

/// The Kingdee link's query for `key`, order and amount at `timestamp_ms`.
pub fn kingdee_query(key: &str, order_no: &str, amount: Decimal, timestamp_ms: i64) -> String {
    format!("k={key},{order_no},{},{timestamp_ms},{},$", amount_text(amount), kingdee_md5(key))
}

/// The Kingdee link's digest matches its key (all it can say: see the module's note), and it is
/// younger than `validity_ms` at `now_ms`.
pub fn verify_kingdee(
    key: &str,
    md5: &str,
    timestamp_ms: i64,
    validity_ms: i64,
    now_ms: i64,
) -> Result<(), LinkRefusal> {
    let expected = kingdee_md5(key);
    if !constant_time_eq(expected.as_bytes(), md5.to_ascii_lowercase().as_bytes()) {
        return Err(LinkRefusal::Tampered);
    }
    if now_ms >= timestamp_ms.saturating_add(validity_ms) {
        return Err(LinkRefusal::Expired);
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Read a link from its query parameters; `None` when it is neither format (or a field is
/// malformed).
pub fn parse(params: &HashMap<String, String>) -> Option<Link> {
    if let Some(k) = params.get("k") {
        let parts: Vec<&str> = k.split(',').collect();
        let [key, order, amount, ts, md5, "$"] = parts.as_slice() else { return None };
        if key.is_empty() || !valid_order_no(order) {
            return None;
        }
        return Some(Link::Kingdee {
            key: key.to_string(),
            order_no: order.to_string(),
            amount: parse_amount(amount)?,
            timestamp_ms: ts.parse().ok()?,
            md5: md5.to_string(),
        });
    }
    let get = |k: &str| params.get(k).map(String::as_str);
    let fields = LinkFields {
        seller_tax_no: get("s")
            .filter(|s| (15..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))?
            .to_string(),
        order_no: get("o").filter(|o| valid_order_no(o))?.to_string(),
        amount: parse_amount(get("je")?)?,
        issued_at_ms: get("ts")?.parse().ok()?,
        expires_at_ms: get("exp")?.parse().ok()?,
        key_id: get("kid").filter(|k| valid_key_id(k))?.to_string(),
    };
    Some(Link::Signed { fields, sig: get("sig")?.to_string() })
}

/// A positive amount with at most two decimals, plain digits (`106.00`, `106`).
fn parse_amount(s: &str) -> Option<Decimal> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let d: Decimal = s.parse().ok()?;
    (d.scale() <= 2 && d > Decimal::ZERO).then_some(d)
}

/// Query text → parameters (percent-decoding `%XX` and `+`).
pub fn params_of(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// A shortened order number for logs: the full link (and its signature) is never logged.
pub fn redacted(order_no: &str) -> String {
    let keep: String = order_no.chars().take(4).collect();
    format!("{keep}…")
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn fields() -> LinkFields {
        LinkFields {
            seller_tax_no: "91310000MA1FL2AB09".into(),
            order_no: "POS-20261201-0001".into(),
            amount: dec!(106.00),
            issued_at_ms: 1_764_547_200_000,
            expires_at_ms: 1_764_633_600_000,
            key_id: "k1".into(),
        }
    }

    fn round_trip(q: &str) -> Link {
        parse(&params_of(q)).expect("a link")
    }

    #[test]
    fn a_signed_link_reads_back_and_verifies_until_it_expires() {
        let f = fields();
        let sig = sign(KEY, &f);
        assert_eq!(sig.len(), 64);
        let Link::Signed { fields: back, sig: s } = round_trip(&query(&f, &sig)) else { panic!("signed") };
        assert_eq!((&back, &s), (&f, &sig));
        assert_eq!(verify(KEY, &back, &s, f.issued_at_ms), Ok(()));
        // Expiry edges: the last millisecond is valid, the expiry itself is not.
        assert_eq!(verify(KEY, &back, &s, f.expires_at_ms - 1), Ok(()));
        assert_eq!(verify(KEY, &back, &s, f.expires_at_ms), Err(LinkRefusal::Expired));
        assert_eq!(verify(KEY, &back, &s, f.expires_at_ms + 1), Err(LinkRefusal::Expired));
    }

    #[test]
    fn changing_any_field_breaks_the_signature() {
        let f = fields();
        let sig = sign(KEY, &f);
        let now = f.issued_at_ms;
        let tampered: Vec<(&str, LinkFields)> = vec![
            ("seller", LinkFields { seller_tax_no: "92440300MA5DXY7K3W".into(), ..f.clone() }),
            ("order", LinkFields { order_no: "POS-20261201-0002".into(), ..f.clone() }),
            ("amount", LinkFields { amount: dec!(1.06), ..f.clone() }),
            ("amount scale", LinkFields { amount: dec!(106.01), ..f.clone() }),
            ("issued", LinkFields { issued_at_ms: f.issued_at_ms + 1, ..f.clone() }),
            ("expiry", LinkFields { expires_at_ms: f.expires_at_ms + 86_400_000, ..f.clone() }),
            ("key id", LinkFields { key_id: "k2".into(), ..f.clone() }),
        ];
        for (what, t) in tampered {
            assert_eq!(verify(KEY, &t, &sig, now), Err(LinkRefusal::Tampered), "{what}");
        }
        // An extended expiry on an expired link is still a forgery, not "expired".
        let later = LinkFields { expires_at_ms: f.expires_at_ms + 1, ..f.clone() };
        assert_eq!(verify(KEY, &later, &sig, f.expires_at_ms + 10), Err(LinkRefusal::Tampered));
        // The signature itself: one nibble, truncated, not hex, upper case of a valid one is fine.
        let mut flipped = sig.clone().into_bytes();
        flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
        assert_eq!(verify(KEY, &f, &String::from_utf8(flipped).unwrap(), now), Err(LinkRefusal::Tampered));
        assert_eq!(verify(KEY, &f, &sig[..62], now), Err(LinkRefusal::Tampered));
        assert_eq!(verify(KEY, &f, "zz", now), Err(LinkRefusal::Tampered));
        assert_eq!(verify(KEY, &f, "", now), Err(LinkRefusal::Tampered));
    }

    #[test]
    fn a_rotated_key_signs_differently_and_the_old_key_still_verifies_its_own_links() {
        let f = fields();
        let old = sign(KEY, &f);
        let new_key = b"another key of the same enterprise";
        let rotated = LinkFields { key_id: "k2".into(), ..f.clone() };
        let new = sign(new_key, &rotated);
        assert_ne!(old, new);
        assert_eq!(verify(KEY, &f, &old, f.issued_at_ms), Ok(()));
        assert_eq!(verify(new_key, &rotated, &new, f.issued_at_ms), Ok(()));
        // Neither key verifies the other's link.
        assert_eq!(verify(new_key, &f, &old, f.issued_at_ms), Err(LinkRefusal::Tampered));
        assert_eq!(verify(KEY, &rotated, &new, f.issued_at_ms), Err(LinkRefusal::Tampered));
    }

    #[test]
    fn malformed_links_are_not_links() {
        let f = fields();
        let q = query(&f, &sign(KEY, &f));
        for drop in ["s=", "o=", "je=", "ts=", "exp=", "kid=", "sig="] {
            let without: Vec<&str> = q.split('&').filter(|p| !p.starts_with(drop)).collect();
            assert_eq!(parse(&params_of(&without.join("&"))), None, "without {drop}");
        }
        for bad in [
            q.replace("je=106.00", "je=-106.00"),
            q.replace("je=106.00", "je=106.001"),
            q.replace("je=106.00", "je=1e2"),
            q.replace("o=POS-20261201-0001", "o=a%0Ab"),
            q.replace("kid=k1", "kid=k%0A1"),
            q.replace("ts=", "ts=x"),
        ] {
            assert_eq!(parse(&params_of(&bad)), None, "{bad}");
        }
    }

    #[test]
    fn the_kingdee_format_matches_its_documented_digest() {
        // MD5(reverse("abc" + "abc")) = MD5("cbacba"), computed independently (`printf cbacba | md5sum`).
        assert_eq!(kingdee_md5("abc"), "cfc0845bfbb119d151bcbc4ab13e1387");
        let q = kingdee_query("abc", "DD001", dec!(58.5), 1_764_547_200_000);
        assert_eq!(q, format!("k=abc,DD001,58.50,1764547200000,{},$", kingdee_md5("abc")));
        let Link::Kingdee { key, order_no, amount, timestamp_ms, md5 } = round_trip(&q) else {
            panic!("kingdee")
        };
        assert_eq!((key.as_str(), order_no.as_str(), amount), ("abc", "DD001", dec!(58.50)));
        let day = 86_400_000;
        assert_eq!(verify_kingdee(&key, &md5, timestamp_ms, day, timestamp_ms), Ok(()));
        assert_eq!(
            verify_kingdee(&key, &md5, timestamp_ms, day, timestamp_ms + day),
            Err(LinkRefusal::Expired)
        );
        assert_eq!(verify_kingdee("abd", &md5, timestamp_ms, day, timestamp_ms), Err(LinkRefusal::Tampered));
        // Why it is off by default: the digest ignores order and amount, so a changed amount verifies.
        let forged = round_trip(&q.replace("58.50", "9999.00"));
        let Link::Kingdee { md5: m2, .. } = forged else { panic!("kingdee") };
        assert_eq!(verify_kingdee("abc", &m2, timestamp_ms, day, timestamp_ms), Ok(()));
    }

    #[test]
    fn refusals_have_stable_codes() {
        for r in [
            LinkRefusal::Unknown,
            LinkRefusal::Tampered,
            LinkRefusal::Expired,
            LinkRefusal::Disabled,
            LinkRefusal::UnknownOrder,
            LinkRefusal::AmountDiffers,
        ] {
            assert_eq!(LinkRefusal::from_code(r.code()), Some(r));
        }
        assert_eq!(redacted("POS-20261201-0001"), "POS-…");
    }
}
