//! Amounts as the hosted pages show them. Stripe's pages print the currency's symbol for the
//! common ones and the ISO code otherwise, always with the currency's minor digits.

/// `2900, "usd"` → `$29.00`; `-1050, "eur"` → `-€10.50`; `1000, "jpy"` → `¥1,000`.
pub fn display(minor: i64, currency: &str) -> String {
    let code = currency.to_ascii_uppercase();
    // Stripe's zero- and three-decimal currencies.
    let places: u32 = match code.as_str() {
        "BIF" | "CLP" | "DJF" | "GNF" | "JPY" | "KMF" | "KRW" | "MGA" | "PYG" | "RWF" | "UGX"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "JOD" | "KWD" | "OMR" | "TND" => 3,
        _ => 2,
    };
    let scale = 10u64.pow(places);
    let abs = minor.unsigned_abs();
    let whole = (abs / scale).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if places > 0 {
        grouped = format!("{grouped}.{:0w$}", abs % scale, w = places as usize);
    }
    let sign = if minor < 0 { "-" } else { "" };
    let symbol = match code.as_str() {
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "JPY" => "¥",
        "CAD" => "CA$",
        "AUD" => "A$",
        _ => return format!("{sign}{grouped} {code}"),
    };
    format!("{sign}{symbol}{grouped}")
}

#[cfg(test)]
mod tests {
    use super::display;

    #[test]
    fn shows_amounts_like_stripes_pages() {
        assert_eq!(display(2900, "usd"), "$29.00");
        assert_eq!(display(-1050, "eur"), "-€10.50");
        assert_eq!(display(123_456_789, "gbp"), "£1,234,567.89");
        assert_eq!(display(1000, "jpy"), "¥1,000");
        assert_eq!(display(1234, "kwd"), "1.234 KWD");
    }
}
