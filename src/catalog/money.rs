//! Money is integer minor units plus an ISO currency, as Stripe sends it. Formatting is the
//! only place it becomes a decimal string.

/// Minor units per major unit, per Stripe's list of zero- and three-decimal currencies.
fn decimals(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "JPY" | "KMF" | "KRW" | "MGA" | "PYG" | "RWF" | "UGX"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "JOD" | "KWD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

fn symbol(currency: &str) -> Option<&'static str> {
    Some(match currency {
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "JPY" => "¥",
        "CAD" => "CA$",
        "AUD" => "A$",
        "INR" => "₹",
        _ => return None,
    })
}

/// `2900, "usd"` → `$29.00`; `-1050, "eur"` → `-€10.50`; `1000, "jpy"` → `¥1,000`.
pub fn format_money(minor: i64, currency: &str) -> String {
    format(minor, currency, true)
}

/// Like [`format_money`], but drops a zero fraction: `$29` on a price tag.
pub fn format_price(minor: i64, currency: &str) -> String {
    format(minor, currency, false)
}

fn format(minor: i64, currency: &str, always_fraction: bool) -> String {
    let code = currency.to_ascii_uppercase();
    let places = decimals(&code);
    let scale = 10u64.pow(places);
    let abs = minor.unsigned_abs();
    let (major, fraction) = (abs / scale, abs % scale);
    let mut amount = group_thousands(major);
    if places > 0 && (always_fraction || fraction != 0) {
        amount.push_str(&format!(".{fraction:0width$}", width = places as usize));
    }
    let sign = if minor < 0 { "-" } else { "" };
    match symbol(&code) {
        Some(s) => format!("{sign}{s}{amount}"),
        None => format!("{sign}{amount} {code}"),
    }
}

/// What a person typed as an amount of `currency` (`12.50`, `1,000`, `$7`), in minor units;
/// `None` when it is not a positive amount with at most the currency's decimals.
pub fn parse_amount(typed: &str, currency: &str) -> Option<i64> {
    let places = decimals(&currency.to_ascii_uppercase()) as usize;
    if typed.contains('-') {
        return None;
    }
    let cleaned: String = typed
        .trim()
        .trim_start_matches(|c: char| !c.is_ascii_digit() && c != '.')
        .chars()
        .filter(|c| *c != ',')
        .collect();
    let (major, fraction) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if major.is_empty() && fraction.is_empty()
        || !digits(major)
        || !digits(fraction)
        || fraction.len() > places
        || major.len() > 12
    {
        return None;
    }
    let major: i64 = if major.is_empty() {
        0
    } else {
        major.parse().ok()?
    };
    let fraction: i64 = format!("{fraction:0<places$}").parse().unwrap_or(0);
    let minor = major
        .checked_mul(10i64.pow(places as u32))?
        .checked_add(fraction)?;
    (minor > 0).then_some(minor)
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_common_currencies() {
        assert_eq!(format_money(2900, "usd"), "$29.00");
        assert_eq!(format_money(5, "usd"), "$0.05");
        assert_eq!(format_money(-1050, "eur"), "-€10.50");
        assert_eq!(format_money(123456789, "gbp"), "£1,234,567.89");
        assert_eq!(format_money(1000, "jpy"), "¥1,000");
        assert_eq!(format_money(1234, "kwd"), "1.234 KWD");
        assert_eq!(format_money(999, "chf"), "9.99 CHF");
    }

    #[test]
    fn typed_amounts_become_minor_units() {
        assert_eq!(parse_amount("12.50", "usd"), Some(1250));
        assert_eq!(parse_amount("$7", "usd"), Some(700));
        assert_eq!(parse_amount("1,000.5", "usd"), Some(100_050));
        assert_eq!(parse_amount(".5", "eur"), Some(50));
        assert_eq!(parse_amount("1000", "jpy"), Some(1000));
        for bad in [
            "",
            "0",
            "0.00",
            "abc",
            "1.234",
            "-5",
            "1.2.3",
            "99999999999999",
        ] {
            assert_eq!(parse_amount(bad, "usd"), None, "{bad}");
        }
        assert_eq!(parse_amount("1.5", "jpy"), None);
    }

    #[test]
    fn price_tags_drop_a_zero_fraction_only() {
        assert_eq!(format_price(2900, "usd"), "$29");
        assert_eq!(format_price(2950, "usd"), "$29.50");
        assert_eq!(format_price(29000, "usd"), "$290");
        assert_eq!(format_price(0, "usd"), "$0");
        assert_eq!(format_price(i64::MIN, "usd"), "-$92,233,720,368,547,758.08");
    }
}
