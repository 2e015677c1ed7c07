//! FastMCP: a policy enforcement point for AI-agent tool traffic, on pingora.
//!
//! Pipeline (see ARCHITECTURE.md): authenticate → parse → decide → limit → hold → broker →
//! forward → audit, owned by one enforcement core ([`enforce`]) that every door calls. Each
//! stage is a module with a plain-Rust core; [`proxy`] is the thin pingora glue.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod broker;
pub mod canonical;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod enforce;
pub mod error;
pub mod gateway;
pub mod holds;
pub mod idempotency;
pub mod listen_check;
pub mod mcp;
pub mod metrics;
pub mod otel;
pub mod pinning;
pub mod policy;
pub mod providers;
pub mod proxy;
pub mod ratelimit;
pub mod rest;
pub mod schema;
pub mod server;
pub mod state;
pub mod tls_listener;
pub mod upstream;
