//! The fixture service, compiled against *real* tokio and run on it.
//!
//! In this crate's tests `tokio` is the real tokio crate (lockstep-tokio's
//! own dependency), so including the fixture's source here proves that the
//! service is plain tokio code: it builds and runs with the switch turned
//! off, exactly as it would in production.

#[path = "../fixture/src/kv.rs"]
#[allow(dead_code)]
mod kv;

use std::time::Duration;

#[tokio::test]
async fn the_service_runs_on_real_tokio() -> std::io::Result<()> {
    assert!(!lockstep::in_simulation());
    assert_eq!(
        kv::concurrent_increments(kv::Config::default(), 3, 4).await?,
        12
    );
    Ok(())
}

#[tokio::test]
async fn the_client_times_out_on_real_time() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let _silent = tokio::spawn(async move { listener.accept().await });
    let mut client = kv::Client::connect(addr, Duration::from_millis(50)).await?;
    let err = client.get("k").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    Ok(())
}
