//! License keys: 135 random bits from the operating system's generator, written as 27
//! Crockford base32 symbols and one check symbol, in seven groups of four
//! (`7KQ2-M4XD-…-9ZP3`). Crockford's alphabet has no I, L, O or U, and reading takes `i`/`l`
//! as 1 and `o` as 0, so a key read aloud or copied by hand still parses. The check symbol
//! (Luhn mod 32) catches every single mistyped symbol and most swapped neighbours, so a typo
//! is refused without asking the database.

use std::fmt;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const DATA_SYMBOLS: usize = 27;

const GROUP: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LicenseKey(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a license key")]
pub struct Malformed;

impl LicenseKey {
    /// A new random key. Fails only if the operating system's random generator does (the
    /// caller's request then fails, and a webhook is retried).
    pub fn generate() -> std::io::Result<Self> {
        let mut random = [0u8; 17];
        getrandom::fill(&mut random).map_err(|e| std::io::Error::other(e.to_string()))?;
        let bits = u128::from_le_bytes(std::array::from_fn(|i| random[i]));
        let mut values: Vec<u8> = (0..25).map(|i| ((bits >> (i * 5)) & 31) as u8).collect();
        // The last 3 bits of the u128 and 7 more from byte 17: 135 random bits in all.
        values.push(((bits >> 125) as u8) | ((random[16] & 3) << 3));
        values.push((random[16] >> 2) & 31);
        values.push(check_value(&values));
        Ok(Self(format(&values)))
    }

    /// Reads a key as typed: any case, with or without dashes and spaces.
    pub fn parse(raw: &str) -> Result<Self, Malformed> {
        if raw.len() > 64 {
            return Err(Malformed);
        }
        let mut values = Vec::with_capacity(DATA_SYMBOLS + 1);
        for c in raw.chars().filter(|c| !matches!(c, '-' | ' ')) {
            values.push(value_of(c).ok_or(Malformed)?);
        }
        if values.len() != DATA_SYMBOLS + 1 || !is_valid(&values) {
            return Err(Malformed);
        }
        Ok(Self(format(&values)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key with all but its last group hidden, for lists and emails' subjects.
    pub fn masked(key: &str) -> String {
        let last = key.rsplit('-').next().unwrap_or("");
        format!("••••-••••-••••-••••-••••-••••-{last}")
    }
}

impl fmt::Display for LicenseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn value_of(c: char) -> Option<u8> {
    let c = match c.to_ascii_uppercase() {
        'O' => '0',
        'I' | 'L' => '1',
        c => c,
    };
    ALPHABET
        .iter()
        .position(|&a| a as char == c)
        .map(|p| p as u8)
}

fn format(values: &[u8]) -> String {
    values
        .chunks(GROUP)
        .map(|group| {
            group
                .iter()
                .map(|&v| ALPHABET[v as usize] as char)
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Luhn mod N for N = 32: from the right, every second value doubled, each sum folded
/// back into one symbol.
fn luhn_sum(values: &[u8], double_first: bool) -> u32 {
    let mut double = double_first;
    let mut sum = 0u32;
    for &v in values.iter().rev() {
        let mut addend = u32::from(v) * if double { 2 } else { 1 };
        addend = addend / 32 + addend % 32;
        sum += addend;
        double = !double;
    }
    sum
}

fn check_value(data: &[u8]) -> u8 {
    ((32 - luhn_sum(data, true) % 32) % 32) as u8
}

fn is_valid(values: &[u8]) -> bool {
    luhn_sum(values, false).is_multiple_of(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back_and_are_grouped() {
        for _ in 0..200 {
            let key = LicenseKey::generate().unwrap();
            assert_eq!(key.as_str().len(), 28 + 6);
            assert_eq!(key.as_str().split('-').count(), 7);
            assert_eq!(LicenseKey::parse(key.as_str()), Ok(key.clone()));
            let sloppy = key.as_str().replace('-', " ").to_lowercase();
            assert_eq!(LicenseKey::parse(&sloppy), Ok(key));
        }
    }

    #[test]
    fn the_readme_example_is_a_valid_key() {
        let key = "7KQ2-M4XD-0RTB-9Z3P-HW5C-XN8E-J2QV";
        assert_eq!(
            LicenseKey::parse(key).map(|k| k.to_string()),
            Ok(key.to_owned())
        );
    }

    #[test]
    fn keys_differ() {
        let keys: std::collections::HashSet<_> =
            (0..1000).map(|_| LicenseKey::generate().unwrap()).collect();
        assert_eq!(keys.len(), 1000);
    }

    #[test]
    fn every_single_typo_is_caught() {
        let key = LicenseKey::generate().unwrap();
        let compact: Vec<char> = key.as_str().chars().filter(|c| *c != '-').collect();
        for i in 0..compact.len() {
            for &replacement in ALPHABET {
                let replacement = replacement as char;
                if replacement == compact[i] {
                    continue;
                }
                let mut typo = compact.clone();
                typo[i] = replacement;
                let typo: String = typo.into_iter().collect();
                assert_eq!(LicenseKey::parse(&typo), Err(Malformed), "{typo}");
            }
        }
    }

    #[test]
    fn lookalike_letters_read_as_digits_and_garbage_is_refused() {
        let key = LicenseKey::generate().unwrap();
        let with_o = key.as_str().replace('0', "o");
        let with_l = key.as_str().replace('1', "l");
        assert_eq!(LicenseKey::parse(&with_o), Ok(key.clone()));
        assert_eq!(LicenseKey::parse(&with_l), Ok(key.clone()));
        for bad in [
            "",
            "ABCD",
            "U".repeat(28).as_str(),
            &"0".repeat(5000),
            "✓✓✓",
        ] {
            assert_eq!(LicenseKey::parse(bad), Err(Malformed), "{bad}");
        }
        let short = &key.as_str()[..key.as_str().len() - 1];
        assert_eq!(LicenseKey::parse(short), Err(Malformed));
    }
}
