//! Telegram objects for scripted answers: the sandbox world's own builders.
#![allow(unused_imports)]

pub use platforms::sandbox::objects::*;
