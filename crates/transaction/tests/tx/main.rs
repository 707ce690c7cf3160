//! Integration tests of cordon-transaction: real overlay mounts in a user namespace build the
//! upper layers, and every test judges by the real workspace's state afterwards.
#![allow(clippy::unwrap_used)]

mod support;

mod cli;
mod conflicts;
mod crash;
mod kinds;
mod protected;
mod select;
mod store;
mod synthetic;
