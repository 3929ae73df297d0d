//! Stripe's webhook signature: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`, where each
//! v1 is HMAC-SHA256(secret, "<t>.<raw body>"). Several v1 values (and several of our
//! secrets) can be valid at once while a secret is rolled.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// Stripe's SDKs reject signatures more than five minutes off, against replayed deliveries.
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing Stripe-Signature header")]
    Missing,
    #[error("malformed Stripe-Signature header")]
    Malformed,
    #[error("signature timestamp outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    NoMatch,
}

pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[SecretString],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => {
                timestamp = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?)
            }
            // A v1 that is not hex cannot match; other schemes (v0) are ignored, as Stripe's SDKs do.
            Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
            Some(_) => {}
            None => return Err(SignatureError::Malformed),
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    // `abs_diff`: a timestamp near i64::MIN must not overflow the subtraction.
    if now.abs_diff(timestamp) > TOLERANCE_SECS as u64 {
        return Err(SignatureError::Stale);
    }
    // HMAC accepts an empty key, which anyone could sign with: never one of ours.
    for secret in secrets.iter().filter(|s| !s.expose_secret().is_empty()) {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else {
            continue;
        };
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        // verify_slice compares in constant time.
        if signatures
            .iter()
            .any(|sig| mac.clone().verify_slice(sig).is_ok())
        {
            return Ok(());
        }
    }
    Err(SignatureError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    fn sign(secret: &str, t: i64, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.{body}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn accepts_a_valid_signature() {
        let header = format!("t={NOW},v1={}", sign("whsec_a", NOW, "{}"));
        assert_eq!(
            verify(Some(&header), b"{}", &[secret("whsec_a")], NOW),
            Ok(())
        );
    }

    #[test]
    fn rejects_a_tampered_body_or_wrong_secret() {
        let header = format!("t={NOW},v1={}", sign("whsec_a", NOW, "{}"));
        assert_eq!(
            verify(Some(&header), b"{ }", &[secret("whsec_a")], NOW),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify(Some(&header), b"{}", &[secret("whsec_b")], NOW),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify(Some(&header), b"{}", &[], NOW),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn rejects_stale_and_future_timestamps() {
        let old = NOW - TOLERANCE_SECS - 1;
        let header = format!("t={old},v1={}", sign("whsec_a", old, "{}"));
        assert_eq!(
            verify(Some(&header), b"{}", &[secret("whsec_a")], NOW),
            Err(SignatureError::Stale)
        );
        let future = NOW + TOLERANCE_SECS + 1;
        let header = format!("t={future},v1={}", sign("whsec_a", future, "{}"));
        assert_eq!(
            verify(Some(&header), b"{}", &[secret("whsec_a")], NOW),
            Err(SignatureError::Stale)
        );
        // Inside the window either way is fine.
        let near = NOW - TOLERANCE_SECS;
        let header = format!("t={near},v1={}", sign("whsec_a", near, "{}"));
        assert_eq!(
            verify(Some(&header), b"{}", &[secret("whsec_a")], NOW),
            Ok(())
        );
    }

    #[test]
    fn any_v1_and_any_secret_may_match_during_rotation() {
        let header = format!(
            "t={NOW},v1={},v1={}",
            sign("whsec_old", NOW, "{}"),
            sign("whsec_new", NOW, "{}")
        );
        assert_eq!(
            verify(Some(&header), b"{}", &[secret("whsec_new")], NOW),
            Ok(())
        );
        let header = format!("t={NOW},v1={}", sign("whsec_new", NOW, "{}"));
        assert_eq!(
            verify(
                Some(&header),
                b"{}",
                &[secret("whsec_old"), secret("whsec_new")],
                NOW
            ),
            Ok(())
        );
    }

    #[test]
    fn extreme_timestamps_are_stale_not_a_panic() {
        for t in [i64::MIN, i64::MAX, 0] {
            let header = format!("t={t},v1={}", sign("whsec_a", t, "{}"));
            assert_eq!(
                verify(Some(&header), b"{}", &[secret("whsec_a")], NOW),
                Err(SignatureError::Stale),
                "{t}"
            );
        }
        assert_eq!(
            verify(Some("t=5,v1=00"), b"{}", &[secret("whsec_a")], i64::MIN),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn an_empty_secret_never_verifies_anything() {
        // Anyone can compute HMAC with an empty key.
        let header = format!("t={NOW},v1={}", sign("", NOW, "{}"));
        assert_eq!(
            verify(Some(&header), b"{}", &[secret("")], NOW),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn a_truncated_signature_is_refused() {
        let full = sign("whsec_a", NOW, "{}");
        for cut in [2, 32, full.len() - 2] {
            let header = format!("t={NOW},v1={}", &full[..cut]);
            assert_eq!(
                verify(Some(&header), b"{}", &[secret("whsec_a")], NOW),
                Err(SignatureError::NoMatch),
                "{cut} hex digits"
            );
        }
    }

    #[test]
    fn the_tolerance_is_five_minutes() {
        let at = |t: i64| format!("t={t},v1={}", sign("whsec_a", t, "{}"));
        let s = [secret("whsec_a")];
        assert_eq!(verify(Some(&at(NOW - 300)), b"{}", &s, NOW), Ok(()));
        assert_eq!(
            verify(Some(&at(NOW - 301)), b"{}", &s, NOW),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(Some(&at(NOW + 301)), b"{}", &s, NOW),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn rejects_malformed_headers() {
        let s = [secret("whsec_a")];
        assert_eq!(verify(None, b"{}", &s, NOW), Err(SignatureError::Missing));
        for bad in [
            "",
            "garbage",
            "t=abc,v1=00",
            &format!("t={NOW}"),
            "v1=00",
            &format!("t={NOW},v1=zz"),
        ] {
            assert_eq!(
                verify(Some(bad), b"{}", &s, NOW),
                Err(SignatureError::Malformed),
                "{bad:?}"
            );
        }
    }
}
