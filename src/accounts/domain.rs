//! Values checked at the boundary: past here, code never sees an unchecked email, password
//! or redirect target.

use crate::error::{AppError, Message};

/// A syntactically valid email address, trimmed and lower-cased: the unique key of a user,
/// so `Ann@Example.com` and `ann@example.com` are one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(AppError::field("email", Message::EnterEmail));
        }
        let options = email_address::Options::default()
            .with_required_tld()
            .without_domain_literal()
            .without_display_text();
        let valid = email.len() <= 254
            && email_address::EmailAddress::parse_with_options(&email, options).is_ok();
        if !valid {
            return Err(AppError::field("email", Message::InvalidEmail));
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password acceptable for a new account. Only its length is policed: length is what
/// makes passwords strong, and composition rules push people to weaker ones (NIST 800-63B).
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_CHARS: usize = 8;
    /// Argon2 cost grows with input; a cap keeps one request from burning a core.
    pub const MAX_BYTES: usize = 1024;

    pub fn parse(raw: String) -> Result<Self, AppError> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(AppError::field("password", Message::PasswordTooShort));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(AppError::field("password", Message::PasswordTooLong));
        }
        if raw.trim().is_empty() {
            return Err(AppError::field("password", Message::PasswordBlank));
        }
        Ok(Self(raw))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Where a request comes from, as far as limits are concerned: an IPv4 address, or the
/// IPv6 /64 around an address (one customer's whole allocation, which an attacker could
/// otherwise rotate through for a fresh limit per request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network(String);

impl Network {
    pub fn of(ip: std::net::IpAddr) -> Self {
        match ip {
            std::net::IpAddr::V4(v4) => Self(v4.to_string()),
            std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(v4.to_string()),
                None => {
                    let s = v6.segments();
                    Self(format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]))
                }
            },
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where to send the user after logging in. Only a path on this site: anything else
/// (`//evil.example`, `https://…`, `/\evil`) would make us an open redirect.
pub fn safe_next(next: Option<&str>) -> String {
    const DEFAULT: &str = "/dashboard";
    match next.map(str::trim) {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(char::is_control)
                && !p.starts_with("/api/")
                && !p.starts_with("/login")
                && !p.starts_with("/signup") =>
        {
            p.to_owned()
        }
        _ => DEFAULT.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
    }

    #[test]
    fn bad_emails_are_field_errors() {
        for raw in [
            "",
            "   ",
            "ann",
            "ann@",
            "@example.com",
            "ann@localhost",
            "ann example@x.com",
            "a@b.",
            "x@@y.com",
        ] {
            match Email::parse(raw) {
                Err(AppError::Field { field: "email", .. }) => {}
                other => panic!("{raw:?} gave {other:?}"),
            }
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn passwords_need_length_but_no_composition_rules() {
        assert!(NewPassword::parse("short".into()).is_err());
        assert!(NewPassword::parse("        ".into()).is_err());
        assert!(NewPassword::parse("x".repeat(1025)).is_err());
        assert!(NewPassword::parse("correct horse".into()).is_ok());
        // Eight characters, counted as characters rather than bytes.
        assert!(NewPassword::parse("pässwörd".into()).is_ok());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_ipv4_by_the_address() {
        let of = |ip: &str| Network::of(ip.parse().unwrap()).to_string();
        assert_eq!(of("2001:db8:1:2:aaaa::1"), of("2001:db8:1:2:bbbb::9"));
        assert_ne!(of("2001:db8:1:2::1"), of("2001:db8:1:3::1"));
        assert_eq!(of("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(of("203.0.113.7"), "203.0.113.7");
        assert_eq!(of("::ffff:203.0.113.7"), "203.0.113.7");
    }

    #[test]
    fn next_only_follows_local_paths() {
        assert_eq!(safe_next(Some("/settings/billing")), "/settings/billing");
        assert_eq!(
            safe_next(Some("/pricing?interval=year")),
            "/pricing?interval=year"
        );
        for bad in [
            "",
            "dashboard",
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "/api/logout",
            "/login",
            "/x\ny",
        ] {
            assert_eq!(safe_next(Some(bad)), "/dashboard", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/dashboard");
    }
}
