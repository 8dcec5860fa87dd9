//! Send a script to a running Tcl program that uses comm.
//!
//! ```sh
//! # in one terminal: a Tcl program serving comm
//! tclsh
//! % package require comm
//! % ::comm::comm self
//! 40123
//! # in another:
//! cargo run -p tclcomm --example client -- 40123 'expr {6*7}'
//! 42
//! cargo run -p tclcomm --example client -- 40123 'error boom {} {MY CODE}'
//! error: boom (errorCode MY CODE)
//! ```
//!
//! The first argument is the id (`PORT`, or `"PORT HOST"`); the others are
//! the script's fragments, joined by the receiver as comm does.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::Duration;

use tclcomm::blocking::Channel;
use tclcomm::{Config, Error, Id, Script};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(id), script) = (args.next(), Script::words(args)) else {
        eprintln!("usage: client ID SCRIPT...");
        return ExitCode::from(2);
    };
    let client = match Channel::new(Config::new()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match client.send_timeout(Id::from_text(id), script, Duration::from_secs(30)) {
        Ok(result) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Err(Error::Remote(r)) => {
            eprintln!("error: {} (errorCode {})", r.message, r.errorcode);
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
