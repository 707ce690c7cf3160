//! `cordon request`: inside the sandbox, ask the human for a wider boundary through the
//! request door cordon gave this sandbox, and wait for the answer.

use std::io::ErrorKind;
use std::path::PathBuf;

use crate::args::RequestArgs;
use crate::failure::EXIT_SETUP;

/// The variable `cordon run` sets to the door's path inside the sandbox.
pub const DOOR_VAR: &str = "CORDON_REQUEST_SOCKET";

const EXIT_DENIED: i32 = 1;
const EXIT_UNGRANTABLE: i32 = 2;

/// Asks; returns the exit status (0 allowed, 1 denied, 2 not grantable, 125 no door).
pub fn request(args: &RequestArgs) -> i32 {
    let door = std::env::var_os(DOOR_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(cordon_linux::REQUEST_DOOR));
    let justification = args.justification.join(" ");
    eprintln!("cordon: requesting `{}`…", args.what.join(" "));
    match cordon_approvals::door::request(&door, args.what.clone(), &justification) {
        Ok(answer) => {
            if args.json {
                println!("{}", serde_json::to_string(&answer).unwrap_or_default());
            }
            let said = match (answer.allowed(), answer.channel) {
                (true, _) => format!(
                    "allowed ({}, through the {})",
                    answer.choice.as_str(),
                    answer.channel.as_str()
                ),
                (false, cordon_approvals::Channel::Timeout) => {
                    "denied: nobody answered in time".to_string()
                }
                (false, cordon_approvals::Channel::Broker) => {
                    "denied: cordon stopped before anyone answered".to_string()
                }
                (false, ch) => format!("denied by the human (through the {})", ch.as_str()),
            };
            eprintln!("cordon: {said}");
            match answer.allowed() {
                true => 0,
                false => EXIT_DENIED,
            }
        }
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::NotFound | ErrorKind::ConnectionRefused | ErrorKind::PermissionDenied
            ) =>
        {
            eprintln!(
                "cordon: no request door at {} ({e}): `cordon request` works inside a sandbox that `cordon run` started",
                door.display()
            );
            EXIT_SETUP
        }
        Err(e) if e.kind() == ErrorKind::Other => {
            eprintln!("cordon: not asked: {e}");
            EXIT_UNGRANTABLE
        }
        Err(e) => {
            eprintln!("cordon: the request door at {} failed: {e}", door.display());
            EXIT_SETUP
        }
    }
}
