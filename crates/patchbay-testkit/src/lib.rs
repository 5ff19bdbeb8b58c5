//! Test support shared by connector, host and end-to-end tests: fakes of provider
//! APIs that follow their documented shapes, and the contract suite every
//! connector must pass.
#![deny(missing_docs)]

pub mod contract;
pub mod fakes;
