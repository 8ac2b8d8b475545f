//! The examples of DESIGN.md, as a user would type them, compiled and run.
//! If one of these stops compiling, the documented API changed.

use lockstep::prelude::*;
use lockstep::sync::{Event, Mutex, Semaphore, mpsc, oneshot};

// "The public API, as users write it": ten workers, a yield between read and
// write; it fails for (nearly) every seed, so the harness must report it.
#[lockstep::sim_test(seeds = 200)]
#[should_panic(expected = "lockstep: `counter_is_atomic` failed for seed 0x0")]
async fn counter_is_atomic() {
    let counter = std::rc::Rc::new(std::cell::Cell::new(0));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let c = counter.clone();
            lockstep::task::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(async move {
                    let v = c.get();
                    lockstep::task::yield_now().await; // a suspension point: a race window
                    c.set(v + 1);
                })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(counter.get(), 10); // fails for some seeds: lost update
}

// "Without the macro".
#[test]
fn without_the_macro() {
    let outcome = lockstep::Sim::builder()
        .seed(0x1a7)
        .max_virtual_time(Duration::from_secs(60))
        .build()
        .run(async { /* main task */ });
    match outcome.result() {
        Ok(_value) => {}
        Err(failure) => eprintln!("{failure}"), // Deadlock / Panic / TimedOut / Leak / ...
    }
    assert!(outcome.is_ok());
    lockstep::assert_trace_snapshot!("design_without_the_macro", outcome);
}

// The sync names of DESIGN.md's imports are all there.
#[lockstep::sim_test(seeds = 20)]
async fn the_sync_imports_exist() {
    let m = Mutex::new(0);
    *m.lock().await += 1;
    let s = Semaphore::new(1);
    drop(s.acquire().await.unwrap());
    let e = Event::new();
    e.set();
    e.wait().await;
    let (tx, mut rx) = mpsc::channel(1);
    tx.send(1).await.unwrap();
    assert_eq!(rx.recv().await, Some(1));
    let (otx, orx) = oneshot::channel();
    otx.send(2).unwrap();
    assert_eq!(orx.await.unwrap(), 2);
}

// "Distributed systems": the network sketch, with the settled names. A host
// factory returns `HostResult` (`Result<(), Box<dyn Error>>`), so it ends in
// `Ok(())` and `?` converts any error.
#[lockstep::sim_test(seeds = 50, faults = FaultPlan::random(0.2))]
async fn register_survives_partitions() {
    use futures::{AsyncReadExt, AsyncWriteExt};

    let server = lockstep::net::Host::new("server", || async {
        // a factory: called again on restart
        let listener = lockstep::net::TcpListener::bind("0.0.0.0:80").await?;
        loop {
            let (mut stream, _) = listener.accept().await?;
            lockstep::spawn(async move {
                let mut buf = [0; 4];
                while stream.read_exact(&mut buf).await.is_ok() {
                    if stream.write_all(&buf).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let client = lockstep::net::Host::new("client", || async { Ok(()) });
    let reply = client.spawn(async {
        // a task that runs on host "client": retry until answered
        loop {
            let attempt = async {
                let mut stream = lockstep::net::TcpStream::connect("server:80").await?;
                stream.write_all(b"ping").await?;
                let mut buf = [0; 4];
                stream.read_exact(&mut buf).await?;
                Ok::<_, std::io::Error>(buf)
            };
            match timeout(Duration::from_secs(5), attempt).await {
                Ok(Ok(buf)) => return Ok::<_, std::io::Error>(buf),
                _ => sleep(Duration::from_secs(1)).await,
            }
        }
    });
    lockstep::net::partition("client", "server"); // faults from inside, or from the plan
    lockstep::time::sleep(Duration::from_secs(5)).await;
    lockstep::net::heal("client", "server");
    server.crash(); // its tasks dropped, sockets reset
    server.restart(); // the factory runs again, fresh state
    // A random plan may crash the client host too: its task is then
    // cancelled, the one other acceptable end.
    match reply.await {
        Ok(answer) => assert_eq!(&answer.unwrap(), b"ping"),
        Err(e) => assert!(e.is_cancelled(), "{e}"),
    }
}
