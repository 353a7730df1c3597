//! The data endpoints behind the dashboards: each module implements its routes and describes
//! them (`routes()`); `routes.rs` lists them all. Every handler reads through the
//! [`crate::query::Session`] extractor, so the caller's scope applies to every one.

pub mod audit;
pub mod board;
pub mod clients;
pub mod deal_card;
pub mod dimensions;
pub mod migration;
pub mod sales;
pub mod team;
