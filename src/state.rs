//! The one piece of shared state: handlers take what they need through `FromRef`, server
//! functions through [`AppState::get`].

use crate::{config::Config, error::AppError};
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: PgPool,
    pub config: Arc<Config>,
}

impl AppState {
    /// The state inside a server function or during rendering (provided by `startup`).
    pub fn get() -> Result<Self, AppError> {
        leptos::prelude::use_context::<Self>()
            .ok_or_else(|| AppError::internal("AppState missing from context"))
    }
}
