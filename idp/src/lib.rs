//! The identity provider as a library: the binary (`main.rs`) and the black-box
//! tests both start it through [`startup::Application`].

pub mod account;
pub mod admin_api;
pub mod admin_console;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod crypto;
pub mod domain;
pub mod ephemeral;
pub mod mail;
pub mod mfa;
pub mod migration;
pub mod oidc;
pub mod passkey;
pub mod retention;
pub mod signin;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod web;

pub use startup::Application;
