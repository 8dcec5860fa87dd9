//! The channel API without async: each call blocks the calling thread.
//! Channels made here run on a shared background tokio runtime. Do not call
//! these from inside an async task.
//!
//! ```
//! use tclcomm::blocking::Channel;
//! use tclcomm::{Config, Dispatcher};
//!
//! let commands = Dispatcher::new();
//! commands.register("hello", |_call, _args| Ok("world".into()));
//! let server = Channel::new(Config::listening().evaluator(commands)).unwrap();
//! let client = Channel::new(Config::new()).unwrap();
//! assert_eq!(client.send(server.self_id(), "hello").unwrap(), "world");
//! ```

use std::sync::OnceLock;
use std::time::Duration;

use tokio::runtime::Runtime;

use crate::{CallbackInfo, Config, Error, Id, Outcome, Script};

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tclcomm")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the tclcomm runtime: {e}"))
    })
}

/// A blocking handle to a [`crate::Channel`].
#[derive(Debug, Clone)]
pub struct Channel {
    inner: crate::Channel,
}

impl Channel {
    /// Creates a channel (see [`crate::Channel::new`]).
    pub fn new(config: Config) -> Result<Channel, Error> {
        let inner = runtime().block_on(crate::Channel::new(config))?;
        Ok(Channel { inner })
    }

    /// The async handle of the same channel.
    pub fn as_async(&self) -> &crate::Channel {
        &self.inner
    }

    /// The channel's own id.
    pub fn self_id(&self) -> Id {
        self.inner.self_id()
    }

    /// See [`crate::Channel::send`].
    pub fn send(&self, id: impl Into<Id>, script: impl Into<Script>) -> Result<String, Error> {
        runtime().block_on(self.inner.send(id, script))
    }

    /// See [`crate::Channel::send_timeout`].
    pub fn send_timeout(
        &self,
        id: impl Into<Id>,
        script: impl Into<Script>,
        timeout: Duration,
    ) -> Result<String, Error> {
        runtime().block_on(self.inner.send_timeout(id, script, timeout))
    }

    /// See [`crate::Channel::call`].
    pub fn call(
        &self,
        id: impl Into<Id>,
        script: impl Into<Script>,
        timeout: Option<Duration>,
    ) -> Result<Outcome, Error> {
        runtime().block_on(self.inner.call(id, script, timeout))
    }

    /// See [`crate::Channel::send_async`].
    pub fn send_async(&self, id: impl Into<Id>, script: impl Into<Script>) -> Result<(), Error> {
        runtime().block_on(self.inner.send_async(id, script))
    }

    /// See [`crate::Channel::send_callback`]; the callback runs on a
    /// runtime thread.
    pub fn send_callback(
        &self,
        id: impl Into<Id>,
        script: impl Into<Script>,
        callback: impl FnOnce(CallbackInfo) + Send + 'static,
    ) -> Result<u64, Error> {
        runtime().block_on(self.inner.send_callback(id, script, callback))
    }

    /// See [`crate::Channel::connect`].
    pub fn connect(&self, id: impl Into<Id>) -> Result<(), Error> {
        runtime().block_on(self.inner.connect(id))
    }

    /// See [`crate::Channel::interps`].
    pub fn interps(&self) -> Vec<Id> {
        self.inner.interps()
    }

    /// See [`crate::Channel::shutdown`].
    pub fn shutdown(&self, id: impl Into<Id>) -> Option<&'static str> {
        self.inner.shutdown(id)
    }

    /// See [`crate::Channel::abort`].
    pub fn abort(&self) {
        self.inner.abort()
    }

    /// See [`crate::Channel::destroy`].
    pub fn destroy(&self) {
        self.inner.destroy()
    }

    /// See [`crate::Channel::configure`].
    pub fn configure(&self, change: impl FnOnce(Config) -> Config) -> Result<(), Error> {
        runtime().block_on(self.inner.configure(change))
    }
}
