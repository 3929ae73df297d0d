//! Shared components: the page frame, the mode banner, form pieces and notices.

#[cfg(feature = "ssr")]
pub mod format;
mod forms;
mod layout;
mod pages;

pub use forms::{use_form_error, Field, FormBanner, PasswordField, SubmitButton};
pub use layout::Layout;
pub use pages::{HomePage, NotFound};

use crate::error::ApiError;
use leptos::prelude::*;
use leptos_router::components::Redirect;

/// Shows an error from a server function; an expired session sends the user to log in
/// and back to `back_to` afterwards.
#[component]
pub fn ErrorNotice(error: ApiError, #[prop(into)] back_to: String) -> impl IntoView {
    match error {
        ApiError::Unauthenticated => view! { <Redirect path=login_path(&back_to)/> }.into_any(),
        other => {
            view! { <p class="notice notice-error" role="alert">{other.to_string()}</p> }.into_any()
        }
    }
}

pub fn login_path(back_to: &str) -> String {
    let next: String = url_escape(back_to);
    format!("/login?next={next}")
}

/// Percent-encodes a path for use as one query value.
pub fn url_escape(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn login_path_escapes_the_return_address() {
        assert_eq!(super::login_path("/dashboard"), "/login?next=/dashboard");
        assert_eq!(super::login_path("/a?b=c&d"), "/login?next=/a%3Fb%3Dc%26d");
    }
}
