//! cordon's approval broker and its channels: only a human outside the sandbox widens it.
//!
//! - [`Broker`] (in `cordon run`, outside the sandbox) holds open [`Request`]s: a `prompt`
//!   command rule, a network destination the proxy holds, an agent's `cordon request`. Each
//!   gets an [`Answer`]: allow once, for the session, always (written to the user's own
//!   configuration by [`Persist`]), or deny; a timeout denies.
//! - [`Control`] serves a broker on a Unix socket in cordon's state folder (a named pipe on
//!   Windows) with a random token; the sandbox can read neither.
//! - [`terminal`] asks on cordon's terminal; [`console`] is the web app for a phone.
#![forbid(unsafe_code)]

mod broker;
pub mod console;
mod control;
#[cfg(unix)]
pub mod door;
mod persist;
mod private;
mod request;
pub mod rules_check;
mod session;
pub mod terminal;
mod token;
mod transport;
pub mod widen;

pub use broker::{Broker, BrokerConfig, DecideError, Pending, Witness};
pub use control::{endpoints, Client, Control, Endpoint};
pub use persist::{Persist, PersistError};
pub use request::{Answer, Channel, Choice, Kind, Request, Scrubber, MASK};
pub use session::{Approvals, Channels, ExecOutcome};
#[cfg(unix)]
pub use terminal::DevTty;
pub use terminal::TerminalIo;
pub use widen::{Widenable, Widening};
