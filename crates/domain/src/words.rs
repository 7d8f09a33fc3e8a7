//! The `word_enum!` macro: closed sets of words with one canonical spelling and accepted aliases.

/// Declares a closed set of words with their canonical spelling and the other spellings accepted
/// (any case) on input.
macro_rules! word_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $canon:literal $(| $alias:literal)*),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $canon),+ }
            }

            /// Parses any accepted spelling, ignoring case.
            pub fn parse(input: &str) -> Option<Self> {
                let s = input.trim();
                $(
                    if s.eq_ignore_ascii_case($canon) $(|| s.eq_ignore_ascii_case($alias))* {
                        return Some($name::$variant);
                    }
                )+
                None
            }

            /// The canonical spellings, for error messages and documentation.
            pub fn names() -> Vec<&'static str> {
                Self::ALL.iter().map(|v| v.as_str()).collect()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
