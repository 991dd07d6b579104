//! The channel: everything that talks to the outside world goes through here.
//!
//! * `codec`, `envelope`, `codes`, `wire`: the Kingdee ultimate-edition OpenAPI envelope and the
//!   bodies inside it (public codes where they exist, ours where not — `schemas/channel.md`);
//! * `error`: every failure and the one function that classifies it;
//! * `client` + `ops`: the reqwest client with tokens, bounded concurrency and retries;
//! * `sandbox`: an axum server that speaks the same protocol with state of its own.

pub mod client;
pub mod codec;
pub mod codes;
pub mod envelope;
pub mod error;
pub mod ops;
pub mod sandbox;
pub mod wire;

pub use client::{ChannelClient, ClientConfig, RetryPolicy};
pub use error::{ChannelError, Disposition};
