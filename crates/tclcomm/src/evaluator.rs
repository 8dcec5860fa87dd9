//! Evaluation of received scripts: the [`Evaluator`] trait, and the
//! [`Responder`] that carries an answer back now or later (comm's
//! `return_async` future).

use std::sync::Weak;

use tclcomm_wire::engine::{ConnId, RequestKind};
use tclcomm_wire::{Code, Id, Outcome, Serial};

use crate::channel::Inner;

/// A request received from a peer.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The sender's id: comm's `remoteid` for this evaluation.
    pub id: Id,
    /// send, async or command.
    pub kind: RequestKind,
    /// The sender's serial.
    pub serial: Serial,
    /// The script fragments, to be joined with Tcl's `concat` rules.
    pub script: Vec<String>,
    /// The channel it arrived on: to send back to the requester (over the
    /// same connection) while evaluating.
    pub channel: crate::Channel,
}

impl Incoming {
    /// The script as one string (Tcl's `concat` of the fragments, which is
    /// what `uplevel #0` evaluates).
    pub fn script_text(&self) -> String {
        tclcomm_wire::script::concat(&self.script)
    }
}

/// Evaluates received scripts. Implementations answer through the
/// [`Responder`], at once or later (from any thread or task); `evaluate`
/// itself must not block for long, since it runs on the connection's task.
pub trait Evaluator: Send + Sync + 'static {
    /// Evaluates `request` and answers through `responder`.
    fn evaluate(&self, request: Incoming, responder: Responder);
}

impl<F> Evaluator for F
where
    F: Fn(Incoming, Responder) + Send + Sync + 'static,
{
    fn evaluate(&self, request: Incoming, responder: Responder) {
        self(request, responder)
    }
}

/// Carries the answer to one request back to its sender: comm's future.
/// Answer with [`respond`](Responder::respond); if the connection is gone by
/// then the answer is dropped (there is no one to give it to). A responder
/// dropped without answering answers with an error, so no caller waits
/// forever.
#[must_use = "a request is answered through its responder"]
pub struct Responder {
    pub(crate) inner: Weak<Inner>,
    pub(crate) conn: ConnId,
    pub(crate) kind: RequestKind,
    pub(crate) serial: Serial,
    pub(crate) done: bool,
    /// `on_lost` callbacks to withdraw once answered.
    pub(crate) lost_tokens: std::sync::Mutex<Vec<u64>>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("conn", &self.conn)
            .field("kind", &self.kind)
            .field("serial", &self.serial)
            .finish()
    }
}

impl Responder {
    /// Sends the answer. Returns false if the connection was gone (the
    /// answer was dropped). For `async` requests nothing is sent, and the
    /// result is always true.
    pub fn respond(mut self, outcome: Outcome) -> bool {
        self.done = true;
        self.forget_lost();
        if self.kind == RequestKind::Async {
            // Nothing to send; no need to look at the channel's state.
            return true;
        }
        match self.inner.upgrade() {
            Some(inner) => Inner::respond(&inner, self.conn, self.kind, &self.serial, &outcome),
            None => false,
        }
    }

    /// Answers with a result (code 0).
    pub fn ok(self, result: impl Into<String>) -> bool {
        self.respond(Outcome::ok(result))
    }

    /// Answers with an error (code 1).
    pub fn error(
        self,
        message: impl Into<String>,
        errorinfo: impl Into<String>,
        errorcode: impl Into<String>,
    ) -> bool {
        let result = message.into();
        self.respond(Outcome {
            code: Code::Error,
            result,
            errorinfo: errorinfo.into(),
            errorcode: errorcode.into(),
        })
    }

    /// Whether the requester's connection is still open.
    pub fn is_connected(&self) -> bool {
        self.inner.upgrade().is_some_and(|i| i.conn_open(self.conn))
    }

    /// Runs `f` once if the requester's connection goes away before the
    /// answer is sent (comm's future `-command`). Runs at once if it already has.
    pub fn on_lost(&self, f: impl FnOnce() + Send + 'static) {
        match self.inner.upgrade() {
            Some(inner) => {
                if let Some(token) = Inner::on_conn_lost(&inner, self.conn, Box::new(f)) {
                    self.lost_tokens
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(token);
                }
            }
            None => f(),
        }
    }

    fn forget_lost(&mut self) {
        let tokens = std::mem::take(
            self.lost_tokens
                .get_mut()
                .unwrap_or_else(|e| e.into_inner()),
        );
        if !tokens.is_empty()
            && let Some(inner) = self.inner.upgrade()
        {
            inner.forget_conn_lost(self.conn, &tokens);
        }
    }

    /// The kind of request this answers.
    pub fn kind(&self) -> RequestKind {
        self.kind
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.forget_lost();
        if !self.done
            && self.kind != RequestKind::Async
            && let Some(inner) = self.inner.upgrade()
        {
            let outcome = Outcome {
                code: Code::Error,
                result: "no result: the request was dropped without an answer".into(),
                errorinfo: String::new(),
                errorcode: "COMM DROPPED".into(),
            };
            Inner::respond(&inner, self.conn, self.kind, &self.serial, &outcome);
        }
    }
}

thread_local! {
    static CURRENT: std::cell::RefCell<Option<Id>> = const { std::cell::RefCell::new(None) };
}

/// The id of the peer whose request is being evaluated on this thread by a
/// [`Dispatcher`](crate::Dispatcher) (comm's `remoteid`), if any.
pub fn remoteid() -> Option<Id> {
    CURRENT.with(|c| c.borrow().clone())
}

struct CurrentGuard(Option<Id>);

impl CurrentGuard {
    fn set(id: &Id) -> CurrentGuard {
        CurrentGuard(CURRENT.with(|c| c.replace(Some(id.clone()))))
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        let prev = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

/// Evaluates a request with a dispatcher as comm does: `uplevel #0` of the
/// fragments, so they are joined with `concat`, and the result or the
/// completion code, errorInfo and errorCode make the outcome.
pub fn dispatch(dispatcher: &crate::Dispatcher, request: &Incoming) -> Outcome {
    if request.script.is_empty() {
        let msg = "wrong # args: should be \"uplevel ?level? command ?arg ...?\"";
        return Outcome {
            code: Code::Error,
            result: msg.into(),
            errorinfo: format!("{msg}\n    while executing\n\"uplevel #0\""),
            errorcode: "TCL WRONGARGS".into(),
        };
    }
    let _current = CurrentGuard::set(&request.id);
    // One fragment's concat is a slice of it: no copy.
    let text = match request.script.as_slice() {
        [one] => std::borrow::Cow::Borrowed(tclcomm_wire::script::concat_one(one)),
        _ => std::borrow::Cow::Owned(request.script_text()),
    };
    outcome_of(dispatcher.eval(&text))
}

/// What a dispatcher's result or error makes of the answer.
fn outcome_of(r: Result<String, crate::TclError>) -> Outcome {
    match r {
        Ok(result) => Outcome::ok(result),
        Err(e) => Outcome {
            code: Code::from(i64::from(e.code())),
            result: e.message().to_string(),
            errorinfo: if e.is_error() {
                e.errorinfo().to_string()
            } else {
                String::new()
            },
            errorcode: if e.is_error() {
                e.errorcode().to_string()
            } else {
                String::new()
            },
        },
    }
}

/// From this size on, a one-fragment script is given up to the dispatcher,
/// so that a plain command's last word can take the script's memory
/// instead of a copy (the message is then held once while it runs).
const BIG_SCRIPT: usize = 1 << 20;

impl Evaluator for crate::Dispatcher {
    fn evaluate(&self, mut request: Incoming, responder: Responder) {
        if let [one] = request.script.as_mut_slice()
            && one.len() >= BIG_SCRIPT
        {
            let script = std::mem::take(one);
            let _current = CurrentGuard::set(&request.id);
            responder.respond(outcome_of(self.eval_owned(script)));
            return;
        }
        let outcome = dispatch(self, &request);
        responder.respond(outcome);
    }
}

/// Runs another evaluator's work on tokio's blocking pool, so that slow
/// commands (that block a thread) never hold up a runtime worker, and so
/// never stall other connections. Costs a thread hop per request; with the
/// [`Dispatcher`](crate::Dispatcher) on a multi-thread runtime,
/// [`register_blocking`](crate::Dispatcher::register_blocking) for the slow
/// commands alone costs nothing for the others.
#[derive(Debug, Clone)]
pub struct Blocking<E>(pub E);

impl<E: Evaluator + Clone> Evaluator for Blocking<E> {
    fn evaluate(&self, request: Incoming, responder: Responder) {
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || inner.evaluate(request, responder));
    }
}
