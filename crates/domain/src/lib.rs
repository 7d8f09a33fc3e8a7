//! Pure types and rules of the Invite Service. Nothing here performs I/O or reads the clock: the
//! current time is passed in.

#[macro_use]
mod words;

pub mod audience;
pub mod channel;
pub mod identifier;
pub mod outcome;
pub mod phone;
pub mod task;
pub mod task_input;
pub mod template;
pub mod username;
pub mod validation;

pub use channel::ChannelRef;
pub use task::{ActionType, Platform, Priority, Task, TaskCounters, TaskSpec, TaskStatus, UserId};
pub use template::MessageTemplate;
pub use username::Username;
pub use validation::{FieldError, FieldErrors};
