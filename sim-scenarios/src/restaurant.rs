//! `restaurant` (seed section: The Event Loop).
//!
//! The tutorial's `restaurant_simulation`: four customers whose orders take
//! 3, 1, 2 and 1.5 s are served concurrently by one event loop. Orders
//! complete in order of service time (2, 4, 3, 1), not of arrival, and all
//! four are served at 3 s: the longest order, not the sum (7.5 s).
//!
//! One variant, `gather`, which passes every seed: the completion order and
//! the 3 s are assertions on virtual time, so no schedule can break them
//! (the orders all end at distinct instants).

use std::cell::RefCell;
use std::convert::Infallible;
use std::rc::Rc;

use lockstep::prelude::*;

use crate::support::secs;
use crate::{Expect, Scenario, Variant};

/// The scenario.
pub const SCENARIO: Scenario = Scenario::new(
    "restaurant",
    "four orders (3, 1, 2, 1.5 s) finish in order of service time; all served at 3 s",
    &[Variant::new("gather", Expect::Pass, |sim| {
        sim.run(restaurant_simulation())
    })],
)
.seeds(300);

/// The tutorial's `restaurant_simulation`.
pub async fn restaurant_simulation() {
    let ready = Rc::new(RefCell::new(Vec::new()));
    let serve_customer = |id: u32, service: f64| {
        let ready = ready.clone();
        async move {
            lockstep::trace!("customer {id}: order taken");
            // The kitchen prepares the food: the loop serves others.
            sleep(secs(service)).await;
            lockstep::trace!("customer {id}: order ready! ({service}s)");
            ready.borrow_mut().push(id);
            Ok::<_, Infallible>(format!("meal for customer {id}"))
        }
    };
    let start = Instant::now();
    let meals = gather([
        serve_customer(1, 3.0),
        serve_customer(2, 1.0),
        serve_customer(3, 2.0),
        serve_customer(4, 1.5),
    ])
    .await
    .unwrap();
    let total = Instant::now() - start;
    lockstep::trace!("all customers served in {total:?}");
    assert_eq!(meals.len(), 4);
    assert_eq!(
        meals[0], "meal for customer 1",
        "gather keeps arrival order"
    );
    assert_eq!(
        *ready.borrow(),
        [2, 4, 3, 1],
        "faster orders complete first"
    );
    assert_eq!(total, secs(3.0));
}
