//! Real tokio runtimes, which a simulation never runs.
//!
//! A simulation *is* the runtime: building or entering a tokio runtime
//! inside one would run tasks on real threads with real time, out of the
//! simulation's sight. So every entry point here panics inside a
//! simulation with a message naming it, and forwards to tokio outside.

use std::future::Future;
use std::io;

use crate::task::JoinHandle;

/// Builds a real tokio runtime.
#[derive(Debug)]
pub struct Builder(tokio::runtime::Builder);

impl Builder {
    /// A single-threaded runtime.
    pub fn new_current_thread() -> Builder {
        Builder(tokio::runtime::Builder::new_current_thread())
    }

    /// A multi-threaded runtime.
    #[cfg(feature = "rt-multi-thread")]
    pub fn new_multi_thread() -> Builder {
        Builder(tokio::runtime::Builder::new_multi_thread())
    }

    /// Enables the I/O and time drivers.
    pub fn enable_all(&mut self) -> &mut Self {
        self.0.enable_all();
        self
    }

    /// Enables the I/O driver.
    pub fn enable_io(&mut self) -> &mut Self {
        self.0.enable_io();
        self
    }

    /// Enables the time driver.
    pub fn enable_time(&mut self) -> &mut Self {
        self.0.enable_time();
        self
    }

    /// Sets the number of worker threads.
    pub fn worker_threads(&mut self, n: usize) -> &mut Self {
        self.0.worker_threads(n);
        self
    }

    /// Names the runtime's threads.
    pub fn thread_name(&mut self, name: impl Into<String>) -> &mut Self {
        self.0.thread_name(name);
        self
    }

    /// Builds the runtime.
    ///
    /// # Panics
    ///
    /// Inside a simulation.
    #[track_caller]
    pub fn build(&mut self) -> io::Result<Runtime> {
        if crate::sim() {
            crate::unsupported("tokio::runtime::Builder::build");
        }
        self.0.build().map(Runtime)
    }
}

/// A real tokio runtime.
#[derive(Debug)]
pub struct Runtime(tokio::runtime::Runtime);

impl Runtime {
    /// A multi-threaded runtime with every driver.
    ///
    /// # Panics
    ///
    /// Inside a simulation.
    #[cfg(feature = "rt-multi-thread")]
    #[track_caller]
    pub fn new() -> io::Result<Runtime> {
        if crate::sim() {
            crate::unsupported("tokio::runtime::Runtime::new");
        }
        tokio::runtime::Runtime::new().map(Runtime)
    }

    /// Runs a future to completion on the runtime.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        if crate::sim() {
            crate::unsupported("tokio::runtime::Runtime::block_on");
        }
        self.0.block_on(future)
    }

    /// Spawns a task on the runtime.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        JoinHandle::real(self.0.spawn(future))
    }

    pub(crate) fn inner(&self) -> &tokio::runtime::Runtime {
        &self.0
    }

    /// A handle to the runtime.
    pub fn handle(&self) -> Handle {
        Handle(self.0.handle().clone())
    }
}

/// A handle to a real tokio runtime.
#[derive(Debug, Clone)]
pub struct Handle(tokio::runtime::Handle);

impl Handle {
    /// The runtime the caller runs on.
    ///
    /// # Panics
    ///
    /// Inside a simulation (no tokio runtime runs there), and outside any
    /// runtime, as tokio does.
    #[track_caller]
    pub fn current() -> Handle {
        if crate::sim() {
            crate::unsupported("tokio::runtime::Handle::current");
        }
        Handle(tokio::runtime::Handle::current())
    }

    /// Spawns a task on the runtime.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        JoinHandle::real(self.0.spawn(future))
    }

    /// Runs a future to completion on the runtime.
    ///
    /// # Panics
    ///
    /// Inside a simulation.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        if crate::sim() {
            crate::unsupported("tokio::runtime::Handle::block_on");
        }
        self.0.block_on(future)
    }
}
