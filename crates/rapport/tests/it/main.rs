//! End-to-end tests of the `rapport` binary's parts against real databases.

mod harness;

mod aggregates;
mod analytics;
mod api_errors;
mod auth;
mod cli;
mod console;
mod import;
mod import_api;
mod loyalty;
mod loyalty_rules;
mod patients;
mod privacy;
mod schema;
mod segments;
mod sessions;
mod visits;
