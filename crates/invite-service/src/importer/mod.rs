//! Audience import: reading files people bring, finding their columns, validating and deduplicating
//! rows into targets.

pub mod read;
