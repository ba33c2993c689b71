//! Every operation of the model is either served or answered
//! `UnsupportedOperationException` naming it; kmsd's own operations are
//! `UnknownOperationException` on this wire.

use super::model;
use crate::operations::KMSD_OPERATIONS;
use crate::{AWS_OPERATIONS, decode_request, is_served, served_operations};
use std::collections::BTreeSet;

#[test]
fn the_operation_list_is_the_models() {
    let ours: BTreeSet<&str> = AWS_OPERATIONS.into_iter().collect();
    let theirs: BTreeSet<&str> = model().operations().into_iter().collect();
    assert_eq!(
        ours.symmetric_difference(&theirs).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "AWS_OPERATIONS differs from the model (a new AWS operation? add it, and decide \
         whether kmsd serves it)"
    );
}

#[test]
fn every_model_operation_is_served_or_unsupported() {
    let mut served = 0;
    let mut unsupported = 0;
    for op in model().operations() {
        let target = format!("TrentService.{op}");
        match decode_request(&target, b"{}") {
            Ok(_) => {
                assert!(is_served(op), "{op}");
                served += 1;
            }
            Err(e) if is_served(op) => {
                // Served: an empty body only lacks required members.
                assert_eq!(e.name, "ValidationException", "{op}: {e}");
                assert!(e.message.contains("Member must not be null"), "{op}: {e}");
                served += 1;
            }
            Err(e) => {
                assert_eq!(e.name, "UnsupportedOperationException", "{op}: {e}");
                assert_eq!(e.status, 400);
                assert!(e.message.contains(op), "{op}: message names it: {e}");
                unsupported += 1;
            }
        }
    }
    assert_eq!(served, served_operations().count());
    assert_eq!(served + unsupported, AWS_OPERATIONS.len());
    // 33 of 54 today; the count is here to notice a change.
    assert_eq!((served, unsupported), (33, 21));
}

#[test]
fn kmsd_own_operations_are_unknown_on_this_wire() {
    let own: Vec<&str> = KMSD_OPERATIONS
        .iter()
        .copied()
        .filter(|op| !AWS_OPERATIONS.contains(op))
        .collect();
    assert!(own.contains(&"GetServicePolicy") && own.contains(&"PutServicePolicy"));
    for op in own {
        let e = decode_request(&format!("TrentService.{op}"), b"{}")
            .err()
            .unwrap_or_else(|| panic!("{op} is served"));
        assert_eq!(e.name, "UnknownOperationException", "{op}");
        assert!(e.message.contains(op), "{e}");
    }
}
