//! End-to-end tests of the `rapport` binary's parts against real databases.

mod harness;

mod aggregates;
mod api_errors;
mod auth;
mod cli;
mod patients;
mod schema;
mod visits;
