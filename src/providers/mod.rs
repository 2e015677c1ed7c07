//! Tool providers behind the REST API: the in-process database, HTTP providers (Pipedrive,
//! Google Ads, manifest-described HTTP tools) and MCP servers.

pub mod database;
pub mod http;
pub mod sender;
