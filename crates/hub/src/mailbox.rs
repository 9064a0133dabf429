//! A running session's mailbox: the one queue pair through which the hub (hub messages, the
//! outbox) and the routes (control requests: a stateful reattach, the dev drop hook, a DELETE,
//! an overflow) reach a session task ([`crate::connection`]), and a wake-up without a message
//! (the hub shutting down: the session then looks at the hub's state).
//!
//! One mutex-guarded pair of queues and one waker per connection, instead of two `flume`
//! channels (each a shared channel block, and a waiter hook plus its queue while the session
//! waits on it): ~450 B less for every idle connection (docs/benchmarks.md). Control requests
//! come first; hub messages are taken only when the session asks for them (backpressure: the
//! replay buffer is full or the transport is away), so a request is never stuck behind them.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Why a mailbox did not take a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Its queue is at capacity.
    Full,
    /// The session is over.
    Closed,
}

/// What a session takes from its mailbox.
#[derive(Debug)]
pub(crate) enum Mail<M, C> {
    /// A control request (always taken first).
    Control(C),
    /// A hub message.
    Message(M),
    /// [`Mailbox::notify`] was called since the last time.
    Notified,
}

/// Hub messages `M` and control requests `C` for one session (see the module docs).
#[derive(Debug)]
pub(crate) struct Mailbox<M, C> {
    state: Mutex<State<M, C>>,
}

#[derive(Debug)]
struct State<M, C> {
    messages: VecDeque<M>,
    control: VecDeque<C>,
    /// The session task, while it waits.
    waker: Option<Waker>,
    /// Whether the waiting session takes hub messages (else only control requests wake it).
    wants_messages: bool,
    notified: bool,
    closed: bool,
}

impl<M, C> Default for Mailbox<M, C> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                messages: VecDeque::new(),
                control: VecDeque::new(),
                waker: None,
                wants_messages: false,
                notified: false,
                closed: false,
            }),
        }
    }
}

impl<M, C> Mailbox<M, C> {
    fn lock(&self) -> MutexGuard<'_, State<M, C>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a hub message unless `capacity` are already waiting or the session is over.
    pub(crate) fn send(&self, message: M, capacity: usize) -> Result<(), Refused> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.messages.len() >= capacity {
            return Err(Refused::Full);
        }
        state.messages.push_back(message);
        let waker = state.wants_messages.then(|| state.waker.take()).flatten();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Queues a control request unless `capacity` (if any) are already waiting or the session
    /// is over; gives it back when refused.
    pub(crate) fn tell(&self, control: C, capacity: Option<usize>) -> Result<(), C> {
        let mut state = self.lock();
        if state.closed || capacity.is_some_and(|c| state.control.len() >= c) {
            return Err(control);
        }
        state.control.push_back(control);
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Wakes the session with [`Mail::Notified`] (once, however often it is called before the
    /// session looks); nothing is queued. `false` when the session is over.
    pub(crate) fn notify(&self) -> bool {
        let mut state = self.lock();
        if state.closed {
            return false;
        }
        state.notified = true;
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// The next control request, a notification, or with `take_messages` the next hub message.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>, take_messages: bool) -> Poll<Mail<M, C>> {
        let mut state = self.lock();
        if let Some(control) = state.control.pop_front() {
            if state.control.is_empty() {
                state.control = VecDeque::new();
            }
            return Poll::Ready(Mail::Control(control));
        }
        if state.notified {
            state.notified = false;
            return Poll::Ready(Mail::Notified);
        }
        if take_messages && let Some(message) = state.messages.pop_front() {
            if state.messages.is_empty() {
                // A burst's queue is not kept by an idle connection.
                state.messages = VecDeque::new();
            }
            return Poll::Ready(Mail::Message(message));
        }
        match &mut state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        state.wants_messages = take_messages;
        Poll::Pending
    }

    /// Waits for [`poll_recv`](Self::poll_recv). Cancel-safe.
    pub(crate) async fn recv(&self, take_messages: bool) -> Mail<M, C> {
        std::future::poll_fn(|cx| self.poll_recv(cx, take_messages)).await
    }

    /// The session is over: later sends are refused, and what is queued is dropped.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        let messages = std::mem::take(&mut state.messages);
        let control = std::mem::take(&mut state.control);
        state.waker = None;
        drop(state);
        drop((messages, control));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll(mailbox: &Mailbox<u32, &'static str>, waker: &Waker, take: bool) -> Poll<String> {
        let mut cx = Context::from_waker(waker);
        mailbox.poll_recv(&mut cx, take).map(|mail| match mail {
            Mail::Control(c) => format!("control {c}"),
            Mail::Message(m) => format!("message {m}"),
            Mail::Notified => "notified".into(),
        })
    }

    #[test]
    fn control_first_messages_only_when_asked_and_bounded() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mailbox = Mailbox::<u32, &'static str>::default();
        assert!(poll(&mailbox, &waker, false).is_pending());
        assert_eq!(mailbox.send(1, 2), Ok(()));
        assert_eq!(mailbox.send(2, 2), Ok(()));
        assert_eq!(mailbox.send(3, 2), Err(Refused::Full));
        // Not taking messages: a message does not wake the session, a control request does.
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        assert!(poll(&mailbox, &waker, false).is_pending());
        assert_eq!(mailbox.tell("drop", Some(1)), Ok(()));
        assert_eq!(mailbox.tell("end", Some(1)), Err("end"));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(
            poll(&mailbox, &waker, true),
            Poll::Ready("control drop".into())
        );
        assert_eq!(
            poll(&mailbox, &waker, true),
            Poll::Ready("message 1".into())
        );
        assert_eq!(
            poll(&mailbox, &waker, true),
            Poll::Ready("message 2".into())
        );
        assert!(poll(&mailbox, &waker, true).is_pending());
        assert_eq!(mailbox.send(4, 2), Ok(()));
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        // A notification wakes the session once, ahead of messages, and queues nothing.
        assert!(poll(&mailbox, &waker, false).is_pending());
        assert!(mailbox.notify());
        assert!(mailbox.notify());
        assert_eq!(count.0.load(Ordering::SeqCst), 3);
        assert_eq!(poll(&mailbox, &waker, true), Poll::Ready("notified".into()));
        assert_eq!(
            poll(&mailbox, &waker, true),
            Poll::Ready("message 4".into())
        );
        mailbox.close();
        assert!(!mailbox.notify());
        assert_eq!(mailbox.send(5, 2), Err(Refused::Closed));
        assert_eq!(mailbox.tell("end", None), Err("end"));
        assert!(poll(&mailbox, &waker, true).is_pending());
    }

    /// The mailbox against a model of its documented rules, over random sequences of every
    /// operation (a deterministic generator, 300 seeds × 400 operations): what each call
    /// returns, what each poll takes, and when the session is woken.
    #[test]
    fn random_operations_follow_the_model() {
        #[derive(Default)]
        struct Model {
            messages: VecDeque<u32>,
            control: VecDeque<u32>,
            notified: bool,
            closed: bool,
            /// The waiting session's waker, and whether it takes hub messages.
            waiter: Option<bool>,
            wakes: usize,
        }
        impl Model {
            fn wake_if(&mut self, wanted: bool) {
                if wanted && self.waiter.take().is_some() {
                    self.wakes += 1;
                }
            }
        }
        for seed in 0..300u64 {
            let mut rng = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let mut next = |n: u64| {
                rng = rng
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (rng >> 33) % n
            };
            let count = Arc::new(Count(AtomicUsize::new(0)));
            let waker = Waker::from(count.clone());
            let mailbox = Mailbox::<u32, u32>::default();
            let mut model = Model::default();
            for step in 0..400u32 {
                let what = format!("seed {seed} step {step}");
                match next(9) {
                    0..=2 => {
                        let capacity = 1 + next(4) as usize;
                        let expected = if model.closed {
                            Err(Refused::Closed)
                        } else if model.messages.len() >= capacity {
                            Err(Refused::Full)
                        } else {
                            model.messages.push_back(step);
                            let takes = model.waiter == Some(true);
                            model.wake_if(takes);
                            Ok(())
                        };
                        assert_eq!(mailbox.send(step, capacity), expected, "{what}: send");
                    }
                    3 => {
                        let capacity = (next(2) == 0).then(|| 1 + next(3) as usize);
                        let expected =
                            if model.closed || capacity.is_some_and(|c| model.control.len() >= c) {
                                Err(step)
                            } else {
                                model.control.push_back(step);
                                model.wake_if(true);
                                Ok(())
                            };
                        assert_eq!(mailbox.tell(step, capacity), expected, "{what}: tell");
                    }
                    4 => {
                        let expected = !model.closed;
                        if expected {
                            model.notified = true;
                            model.wake_if(true);
                        }
                        assert_eq!(mailbox.notify(), expected, "{what}: notify");
                    }
                    5..=7 => {
                        let take = next(3) != 0;
                        let expected = if let Some(c) = model.control.pop_front() {
                            Poll::Ready(format!("control {c}"))
                        } else if model.notified {
                            model.notified = false;
                            Poll::Ready("notified".to_owned())
                        } else if let Some(m) = take.then(|| model.messages.pop_front()).flatten() {
                            Poll::Ready(format!("message {m}"))
                        } else {
                            model.waiter = Some(take);
                            Poll::Pending
                        };
                        let mut cx = Context::from_waker(&waker);
                        let got = mailbox.poll_recv(&mut cx, take).map(|mail| match mail {
                            Mail::Control(c) => format!("control {c}"),
                            Mail::Message(m) => format!("message {m}"),
                            Mail::Notified => "notified".to_owned(),
                        });
                        assert_eq!(got, expected, "{what}: poll (take messages: {take})");
                    }
                    _ => {
                        if next(8) == 0 {
                            mailbox.close();
                            model.closed = true;
                            model.messages.clear();
                            model.control.clear();
                            model.waiter = None;
                        }
                    }
                }
                assert_eq!(
                    count.0.load(Ordering::SeqCst),
                    model.wakes,
                    "{what}: wake-ups"
                );
            }
        }
    }
}
