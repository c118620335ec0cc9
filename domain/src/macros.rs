//! Small declarative macros shared by the value types: text newtypes and closed sets of names.

/// Implements the usual string plumbing for a `struct Name(String)` newtype that has a
/// `parse(&str) -> Result<Self, ValueError>` constructor: `as_str`, `Display`, `AsRef<str>`,
/// `FromStr`, and the `TryFrom<String>` / `Into<String>` pair that serde uses.
macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::values::ValueError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::values::ValueError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

/// Declares a fieldless enum whose variants have fixed names on the wire, with `as_str`,
/// `parse`, `Display` and `FromStr`. The second argument names the field in parse errors.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident as $field:literal {
            $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The name used on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Parses the wire name.
            pub fn parse(s: &str) -> Result<Self, $crate::values::ValueError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::values::ValueError::new(
                        $field,
                        format!(
                            "unknown value {other:?}, expected one of: {}",
                            [$($text,)+].join(", ")
                        ),
                    )),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::values::ValueError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}
