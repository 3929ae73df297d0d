//! Stripe-style ids and the sandbox's clock.

/// Stripe-style id: a prefix and 24 random base62 characters. A v4 UUID has 122 random
/// bits (about 20 base62 digits), so each half of the id comes from its own UUID.
pub fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut s = String::with_capacity(prefix.len() + 25);
    s.push_str(prefix);
    s.push('_');
    for _ in 0..2 {
        let mut n = uuid::Uuid::new_v4().as_u128();
        for _ in 0..12 {
            s.push(ALPHABET[(n % 62) as usize] as char);
            n /= 62;
        }
    }
    s
}

/// Unix seconds, real time (customers on a test clock live in the clock's time instead).
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// True with probability `p` (0 = never, 1 = always): the chaos knobs.
pub fn chance(p: f64) -> bool {
    p > 0.0 && (uuid::Uuid::new_v4().as_u128() as f64 / u128::MAX as f64) < p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_stripe_ids() {
        let id = new_id("cus");
        assert!(id.starts_with("cus_") && id.len() == 28, "{id}");
        assert_ne!(new_id("cus"), new_id("cus"));
        // No low-entropy tail: across many ids the last character varies.
        let tails: std::collections::HashSet<char> = (0..200)
            .map(|_| new_id("x").chars().last().unwrap())
            .collect();
        assert!(tails.len() > 20, "{tails:?}");
    }

    #[test]
    fn chance_is_never_at_zero_and_always_at_one() {
        assert!((0..100).all(|_| !chance(0.0)));
        assert!((0..100).all(|_| chance(1.0)));
    }
}
