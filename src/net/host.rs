//! Hosts: named machines with an address, their tasks, and their life
//! cycle (up, crashed, restarted, paused), plus per-host clocks.
//!
//! A host is made from inside a running simulation with [`Host::new`],
//! which takes a *factory*: a closure returning the host's main future. The
//! factory runs at once, and again on every restart, so a restarted host
//! starts from fresh state, as a restarted process does; anything it must
//! keep across restarts belongs outside the factory (the simulation of a
//! disk, captured by the closure).
//!
//! Every task belongs to at most one host: the host's main task, tasks
//! spawned with [`Host::spawn`], and every task those spawn in turn. The
//! main task of the simulation belongs to none. A host's tasks
//!
//! - are not leaks when the simulation's main task returns: they end with
//!   the simulation, like servers do;
//! - are all dropped at once when the host crashes (their `Drop` guards
//!   run, their sockets close, peers of their streams see resets);
//! - are not polled while the host is paused; timers and deliveries go on,
//!   so a paused host finds its timeouts expired and its sockets full when
//!   it resumes, as a process does after a long GC pause.
//!
//! A host's main future returns a [`HostResult`], `Result<(), Box<dyn
//! Error>>` (as turmoil's hosts do): `?` works on any error type, and a
//! server that loops forever needs no type annotation. Its return is
//! recorded in the trace (`host server: main returned an error: address in
//! use`) but does not fail the run (a server may exit by design, and a
//! crash may cut it short). A panic in any host task is a task panic,
//! reported like any other.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::Ipv4Addr;
use std::panic::Location;
use std::pin::Pin;
use std::rc::Rc;

use super::clock::{drift, skew};
use super::fabric::{self, Fabric};
use super::stream::Backlog;
use super::udp::Inbox;
use crate::runtime::context;
use crate::runtime::ext::Group;
use crate::runtime::world::World;
use crate::task::JoinHandle;
use crate::time::{Duration, Instant};
use crate::trace::EventKind;

/// A host's number: its index in creation order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct HostId(u32);

impl HostId {
    pub(crate) fn new(index: usize) -> HostId {
        HostId(index as u32)
    }

    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }

    /// The executor's group of this host's tasks (the same number).
    pub(crate) fn group(self) -> Group {
        Group::new(self.index())
    }

    /// The host whose tasks form group `g`.
    pub(crate) fn of_group(g: Group) -> HostId {
        HostId::new(g.index())
    }
}

type Factory = Rc<dyn Fn() -> Pin<Box<dyn Future<Output = HostResult>>>>;

/// What a host's main future returns: `Ok(())`, or any error (`?` converts
/// it).
pub type HostResult = Result<(), Box<dyn std::error::Error>>;

/// The transport of a bound port.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Proto {
    Tcp,
    Udp,
}

/// What is bound to a port.
pub(crate) enum Binding {
    Udp(Inbox),
    Listener(Backlog),
}

pub(crate) struct HostState {
    pub(crate) name: Rc<str>,
    /// The name its tasks carry (shared, so spawning allocates nothing).
    pub(crate) task_name: std::sync::Arc<str>,
    pub(crate) ip: Ipv4Addr,
    pub(crate) up: bool,
    /// Bumped by every crash: sockets of an earlier incarnation are dead.
    pub(crate) incarnation: u32,
    pub(crate) paused: bool,
    pause_epoch: u32,
    pub(crate) ports: BTreeMap<(Proto, u16), Binding>,
    next_port: u16,
    factory: Factory,
    site: &'static Location<'static>,
}

/// The first ephemeral port (the IANA range, as Linux and turmoil use).
const EPHEMERAL: u16 = 49152;

impl HostState {
    /// A free ephemeral port for `proto`, if any is left.
    pub(crate) fn ephemeral(&mut self, proto: Proto) -> Option<u16> {
        for _ in 0..=(u16::MAX - EPHEMERAL) {
            let port = self.next_port;
            self.next_port = if port == u16::MAX {
                EPHEMERAL
            } else {
                port + 1
            };
            if !self.ports.contains_key(&(proto, port)) {
                return Some(port);
            }
        }
        None
    }
}

/// A handle to a simulated host: spawn tasks on it, crash it, restart it,
/// pause it, skew its clock. Cheap to clone; valid only inside the
/// simulation that created it.
///
/// ```
/// use lockstep::prelude::*;
/// use lockstep::net::Host;
///
/// let outcome = Sim::new(1).run(async {
///     let server = Host::new("server", || async {
///         lockstep::trace!("server starting");
///         Ok(())
///     });
///     assert_eq!(server.addr().to_string(), "10.0.0.1");
///     let on_server = server.spawn(async { lockstep::net::Host::current().unwrap().name().to_string() });
///     assert_eq!(on_server.await.unwrap(), "server");
///     server.restart(); // the factory runs again
///     sleep(Duration::from_millis(1)).await;
/// });
/// assert_eq!(outcome.trace().user_lines().count(), 2);
/// ```
#[derive(Clone)]
pub struct Host {
    /// The run's network it belongs to (`Fabric::epoch`).
    epoch: u64,
    id: HostId,
    name: Rc<str>,
    ip: Ipv4Addr,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Host({} at {})", self.name, self.ip)
    }
}

impl AsRef<str> for Host {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

#[track_caller]
fn check_name(name: &str) {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && name.parse::<std::net::IpAddr>().is_err()
        && name != "localhost";
    assert!(
        valid,
        "lockstep::net::Host::new: `{name}` is not a usable host name: use 1 to 63 letters, \
         digits, `-`, `_` or `.`, not an IP address and not `localhost`"
    );
}

impl Host {
    /// Creates a host named `name` and starts it: `factory()` is called now
    /// and its future spawned as the host's main task (named after the
    /// host). On [`restart`](Host::restart) the factory is called again.
    ///
    /// The factory's future returns a [`HostResult`], so `Ok(())` and `?`
    /// on any error type need no annotation. For a factory with an error
    /// type of its own (an `async fn serve() -> io::Result<()>`), use
    /// [`Host::from_factory`]; for a host that only runs client tasks,
    /// [`Host::client`].
    ///
    /// # Panics
    ///
    /// Outside a simulation; if the name is taken or is not a usable host
    /// name (letters, digits, `-`, `_`, `.`).
    #[track_caller]
    pub fn new<F, Fut>(name: impl Into<String>, factory: F) -> Host
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = HostResult> + 'static,
    {
        let factory: Factory = Rc::new(move || Box::pin(factory()));
        Host::make(name.into(), factory, Location::caller())
    }

    /// Like [`Host::new`], for a factory whose future returns
    /// `Result<(), E>` with any error type `E` that converts into
    /// `Box<dyn Error>` (`io::Error`, `String`, your own error type):
    ///
    /// ```
    /// use lockstep::prelude::*;
    /// use lockstep::net::{Host, TcpListener};
    ///
    /// async fn serve() -> std::io::Result<()> {
    ///     let _listener = TcpListener::bind("0.0.0.0:80").await?;
    ///     Ok(())
    /// }
    ///
    /// Sim::new(1).run(async {
    ///     Host::from_factory("server", serve);
    /// }).into_result().unwrap();
    /// ```
    ///
    /// (`Host::new` fixes the error type so that a factory ending in a bare
    /// `Ok(())` compiles; here the factory names its own.)
    ///
    /// # Panics
    ///
    /// As [`Host::new`].
    #[track_caller]
    pub fn from_factory<F, Fut, E>(name: impl Into<String>, factory: F) -> Host
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = Result<(), E>> + 'static,
        E: Into<Box<dyn std::error::Error>> + 'static,
    {
        let factory: Factory = Rc::new(move || {
            let fut = factory();
            Box::pin(async move { fut.await.map_err(Into::into) })
        });
        Host::make(name.into(), factory, Location::caller())
    }

    /// A host with no server loop, for client tasks: its main future
    /// returns at once, and [`spawn`](Host::spawn) runs tasks on it.
    /// Short for `Host::new(name, || async { Ok(()) })`.
    ///
    /// ```
    /// use lockstep::prelude::*;
    /// use lockstep::net::Host;
    ///
    /// Sim::new(1).run(async {
    ///     let client = Host::client("client");
    ///     let name = client.spawn(async { Host::current().unwrap().name().to_string() });
    ///     assert_eq!(name.await.unwrap(), "client");
    /// }).into_result().unwrap();
    /// ```
    ///
    /// # Panics
    ///
    /// As [`Host::new`].
    #[track_caller]
    pub fn client(name: impl Into<String>) -> Host {
        let factory: Factory = Rc::new(|| Box::pin(async { Ok(()) }));
        Host::make(name.into(), factory, Location::caller())
    }

    #[track_caller]
    fn make(name: String, factory: Factory, site: &'static Location<'static>) -> Host {
        check_name(&name);
        context::with("lockstep::net::Host::new", |w| {
            let host = fabric::with(w, |f| {
                assert!(
                    !f.names.contains_key(name.as_str()),
                    "lockstep::net::Host::new: a host named `{name}` already exists"
                );
                let id = HostId::new(f.hosts.len());
                let name: Rc<str> = Rc::from(name.as_str());
                let ip = super::addr::host_ip(id.index());
                f.hosts.push(HostState {
                    name: name.clone(),
                    task_name: std::sync::Arc::from(&*name),
                    ip,
                    up: true,
                    incarnation: 0,
                    paused: false,
                    pause_epoch: 0,
                    ports: BTreeMap::new(),
                    next_port: EPHEMERAL,
                    factory,
                    site,
                });
                f.names.insert(name.clone(), id);
                Host {
                    epoch: f.epoch,
                    id,
                    name,
                    ip,
                }
            });
            w.clocks.add();
            w.name_group(host.id.group(), &host.name);
            w.host_created(host.id.group().index(), &host.name);
            w.record(EventKind::Host {
                host: host.name.to_string(),
                what: format!("up at {}", host.ip),
            });
            start(w, host.id);
            host
        })
    }

    /// The host the current task runs on, if any.
    pub fn current() -> Option<Host> {
        context::try_with(|w| {
            let id = HostId::of_group(w.exec.current_host()?);
            fabric::with(w, |f| Some(handle(f, id)))
        })
        .flatten()
    }

    /// The host named `name`, if one exists in this simulation.
    pub fn lookup(name: &str) -> Option<Host> {
        context::try_with(|w| {
            fabric::with_existing(w, |f| f.names.get(name).map(|&id| handle(f, id))).flatten()
        })
        .flatten()
    }

    /// Its name, which resolves to its address.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its address (`10.0.0.N`, N in creation order from 1).
    pub fn addr(&self) -> std::net::IpAddr {
        self.ip.into()
    }

    /// Spawns a task on this host. The task (and every task it spawns)
    /// belongs to the host: it is dropped if the host crashes, held while it
    /// is paused, and not reported as a leak. Spawning on a crashed host
    /// returns a handle whose task was dropped at once
    /// ([`JoinError::Cancelled`](crate::task::JoinError::Cancelled)).
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.spawn_at(future, Location::caller())
    }

    /// [`spawn`](Self::spawn), with the spawn site given (for code that
    /// spawns on a user's behalf: `#[tokio::test]` names the test).
    #[track_caller]
    pub(crate) fn spawn_at<F>(
        &self,
        future: F,
        site: &'static Location<'static>,
    ) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let id = self.checked_id("lockstep::net::Host::spawn");
        let handle = context::with("lockstep::net::Host::spawn", |w| {
            crate::task::spawn_in(
                w,
                future,
                Some(fabric::with(w, |f| f.host(self.id).task_name.clone())),
                false,
                Some(id.group()),
                site,
            )
        });
        if !self.is_up() {
            handle.abort();
        }
        handle
    }

    /// Whether the host is up (not crashed). A paused host is up.
    #[track_caller]
    pub fn is_up(&self) -> bool {
        let id = self.checked_id("lockstep::net::Host::is_up");
        context::with("lockstep::net::Host::is_up", |w| {
            fabric::with(w, |f| f.host(id).up)
        })
    }

    /// Whether the host is paused.
    #[track_caller]
    pub fn is_paused(&self) -> bool {
        let id = self.checked_id("lockstep::net::Host::is_paused");
        context::with("lockstep::net::Host::is_paused", |w| {
            fabric::with(w, |f| f.host(id).paused)
        })
    }

    /// Crashes the host: every task on it is dropped, its sockets close, the
    /// peers of its streams see `ConnectionReset`. A no-op if it is down.
    #[track_caller]
    pub fn crash(&self) {
        let id = self.checked_id("lockstep::net::Host::crash");
        context::with("lockstep::net::Host::crash", |w| crash(w, id));
    }

    /// Restarts the host: crashes it if it is up, then calls its factory
    /// again and spawns the new main task, with fresh sockets.
    #[track_caller]
    pub fn restart(&self) {
        let id = self.checked_id("lockstep::net::Host::restart");
        context::with("lockstep::net::Host::restart", |w| restart(w, id));
    }

    /// Pauses the host until [`resume`](Host::resume): its tasks are not
    /// polled (a stop-the-world pause). The clock, timers and the network
    /// go on.
    #[track_caller]
    pub fn pause(&self) {
        let id = self.checked_id("lockstep::net::Host::pause");
        context::with("lockstep::net::Host::pause", |w| pause(w, id, None));
    }

    /// Pauses the host for `duration` of virtual time.
    #[track_caller]
    pub fn pause_for(&self, duration: Duration) {
        let id = self.checked_id("lockstep::net::Host::pause_for");
        context::with("lockstep::net::Host::pause_for", |w| {
            pause(w, id, Some(duration))
        });
    }

    /// Resumes a paused host.
    #[track_caller]
    pub fn resume(&self) {
        let id = self.checked_id("lockstep::net::Host::resume");
        context::with("lockstep::net::Host::resume", |w| resume(w, id));
    }

    /// Steps the host's clock forward by `by` (see the
    /// [`time`](crate::time) module docs for what sleepers see).
    #[track_caller]
    pub fn clock_forward(&self, by: Duration) {
        let id = self.checked_id("lockstep::net::Host::clock_forward");
        let nanos = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        context::with("lockstep::net::Host::clock_forward", |w| skew(w, id, nanos));
    }

    /// Steps the host's clock back by `by`: the host's `Instant::now` goes
    /// backwards (clamped at `0.000s`).
    #[track_caller]
    pub fn clock_back(&self, by: Duration) {
        let id = self.checked_id("lockstep::net::Host::clock_back");
        let nanos = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        context::with("lockstep::net::Host::clock_back", |w| skew(w, id, -nanos));
    }

    /// Makes the host's clock run fast (`ppm > 0`) or slow (`ppm < 0`) by
    /// `ppm` parts per million from now on; `0` stops the drift.
    ///
    /// # Panics
    ///
    /// If `ppm` is not above -1,000,000 (the clock would stop or run back).
    #[track_caller]
    pub fn clock_drift(&self, ppm: i64) {
        let id = self.checked_id("lockstep::net::Host::clock_drift");
        context::with("lockstep::net::Host::clock_drift", |w| drift(w, id, ppm));
    }

    /// The host's clock, read from anywhere (the main task included).
    #[track_caller]
    pub fn now(&self) -> Instant {
        let id = self.checked_id("lockstep::net::Host::now");
        context::with("lockstep::net::Host::now", |w| {
            let clock = w.clocks.of(id.group());
            Instant::from_nanos(clock.read(w.now().as_nanos()))
        })
    }

    /// This handle's host id, checked to belong to the running simulation.
    #[track_caller]
    fn checked_id(&self, api: &'static str) -> HostId {
        let epoch = context::with(api, |w| fabric::with(w, |f| f.epoch));
        assert!(
            epoch == self.epoch,
            "`{api}`: this Host handle was made by an earlier simulation run (kept in a \
             `static` or `thread_local!`); hosts do not outlive their run: look it up again \
             with `Host::lookup(\"{}\")`",
            self.name
        );
        self.id
    }
}

fn handle(f: &Fabric, id: HostId) -> Host {
    let h = f.host(id);
    Host {
        epoch: f.epoch,
        id,
        name: h.name.clone(),
        ip: h.ip,
    }
}

/// Calls the factory and spawns the host's main task.
fn start(w: &World, h: HostId) {
    let (factory, name, task_name, site) = fabric::with(w, |f| {
        let hs = f.host(h);
        (
            hs.factory.clone(),
            hs.name.clone(),
            hs.task_name.clone(),
            hs.site,
        )
    });
    let fut = factory();
    let host_name = name.clone();
    let main = async move {
        let result = fut.await;
        context::try_with(|w| {
            w.record(EventKind::Host {
                host: host_name.to_string(),
                what: match result {
                    Ok(()) => "main returned".to_string(),
                    Err(e) => format!("main returned an error: {e}"),
                },
            })
        });
    };
    let _detached = crate::task::spawn_in(w, main, Some(task_name), false, Some(h.group()), site);
}

pub(super) fn record_fault(w: &World, action: String) {
    w.record(EventKind::Fault { action });
}

/// Crashes `h`; returns whether it was up.
pub(crate) fn crash(w: &World, h: HostId) -> bool {
    let closed = fabric::with(w, |f| {
        let hs = f.host_mut(h);
        if !hs.up {
            return None;
        }
        hs.up = false;
        hs.incarnation += 1;
        hs.paused = false;
        let ports = std::mem::take(&mut hs.ports);
        let mut wakers = Vec::new();
        for (_, binding) in ports {
            match binding {
                Binding::Udp(inbox) => wakers.extend(inbox.waker),
                Binding::Listener(backlog) => wakers.extend(backlog.waker),
            }
        }
        super::stream::crash_host(f, w, h, &mut wakers);
        Some((wakers, f.host(h).name.clone()))
    });
    let Some((wakers, name)) = closed else {
        return false;
    };
    record_fault(w, format!("crash {name}"));
    w.exec.resume_host(h.group());
    for key in w.exec.tasks_of(h.group()) {
        w.exec.abort(w, key);
    }
    for waker in wakers {
        waker.wake();
    }
    true
}

/// Restarts `h` (crashing it first if it is up).
pub(crate) fn restart(w: &World, h: HostId) {
    crash(w, h);
    let name = fabric::with(w, |f| {
        let hs = f.host_mut(h);
        hs.up = true;
        hs.ports.clear();
        hs.next_port = EPHEMERAL;
        hs.name.clone()
    });
    record_fault(w, format!("restart {name}"));
    start(w, h);
}

/// Pauses `h`, for a while or until resumed.
pub(crate) fn pause(w: &World, h: HostId, duration: Option<Duration>) {
    let (name, epoch) = fabric::with(w, |f| {
        let hs = f.host_mut(h);
        hs.paused = true;
        hs.pause_epoch += 1;
        (hs.name.clone(), hs.pause_epoch)
    });
    w.exec.pause_host(h.group());
    match duration {
        Some(d) => {
            record_fault(
                w,
                format!("pause {name} for {}", crate::time::format_duration(d)),
            );
            w.call_at(w.now().saturating_add(d), move |w| {
                let current =
                    fabric::with(w, |f| f.host(h).paused && f.host(h).pause_epoch == epoch);
                if current {
                    resume(w, h);
                }
            });
        }
        None => record_fault(w, format!("pause {name}")),
    }
}

/// Resumes `h` if it is paused.
pub(crate) fn resume(w: &World, h: HostId) {
    let name = fabric::with(w, |f| {
        let hs = f.host_mut(h);
        let was = std::mem::replace(&mut hs.paused, false);
        was.then(|| hs.name.clone())
    });
    if let Some(name) = name {
        w.exec.resume_host(h.group());
        record_fault(w, format!("resume {name}"));
    }
}
