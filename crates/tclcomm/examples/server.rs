//! A comm server in Rust that a Tcl program can talk to.
//!
//! ```sh
//! cargo run -p tclcomm --example server            # prints its id, e.g. 40123
//! tclsh
//! % package require comm
//! % ::comm::comm send 40123 {add 1 2 3}
//! 6
//! % ::comm::comm send 40123 {greet [whoami]}
//! hello 41007
//! % ::comm::comm send -async 40123 {log something happened}
//! ```
//!
//! An optional argument gives the port (default: any free one).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Duration;

use tclcomm::{Config, Dispatcher, Port, TclError};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args()
        .nth(1)
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(0);

    let commands = Dispatcher::new();
    commands.register("add", |_call, args| {
        let mut sum = 0i64;
        for a in args {
            sum += a.parse::<i64>().map_err(|_| {
                TclError::new(format!("expected integer but got \"{a}\"")).with_errorcode("ARITH")
            })?;
        }
        Ok(sum.to_string())
    });
    commands.register("greet", |_call, args| {
        Ok(format!("hello {}", args.join(" ")))
    });
    // The id of the peer whose request is running (comm's `remoteid`).
    commands.register("whoami", |_call, _args| {
        Ok(tclcomm::remoteid()
            .map(|id| id.to_string())
            .unwrap_or_default())
    });
    commands.register("log", |_call, args| {
        eprintln!("log: {}", args.join(" "));
        Ok(String::new())
    });

    let server = tclcomm::Channel::new(
        Config::listening()
            .port(Port::from(port))
            .evaluator(commands),
    )
    .await?;
    server.on_lost(|e| eprintln!("{} went away: {}", e.id, e.reason));
    println!("{}", server.self_id());

    // Serve until interrupted.
    tokio::signal::ctrl_c().await?;
    server.destroy();
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}
